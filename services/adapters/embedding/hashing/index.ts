/**
 * A local, deterministic embedder: signed feature hashing of word unigrams, word bigrams and
 * character 3- to 5-grams of each word, L2-normalised. No model, no network: it is the default
 * for the demo, the tests and the benchmarks, and similar texts do get similar vectors.
 *
 * Text is NFKC-normalised and lowercased; words are runs of letters, digits and marks. Each
 * feature is hashed (FNV-1a over UTF-16 code units, then murmur3's finaliser to spread the bits)
 * into a bucket and a sign; signs make collisions cancel out on average instead of piling up.
 */
import { ConfigError } from '../../../domain/errors.ts';
import type { Embedder, EmbedderSettings } from '../embedder.ts';

// Feature weights: a word of n letters yields about 3n character n-grams, so n-grams weigh less
// than whole words to keep word identity dominant while still matching inflections and typos.
const WORD_WEIGHT = 1;
const BIGRAM_WEIGHT = 0.7;
const NGRAM_WEIGHT = 0.4;
const MIN_NGRAM = 3;
const MAX_NGRAM = 5;

// Distinct FNV offset bases per feature kind, so the word "abc" and the trigram "abc" differ.
const SEED_WORD = 0x811c9dc5;
const SEED_NGRAM = 0x050c5d1f;
const SEED_BIGRAM = 0x2f8c2d4b;
const FNV_PRIME = 0x01000193;
const BOUNDARY = 0x20; // a space marks word starts and ends in character n-grams

export function createHashing(settings: Pick<EmbedderSettings, 'dimensions'>): Embedder {
  const { dimensions } = settings;
  if (!Number.isInteger(dimensions) || dimensions < 2) {
    throw new ConfigError(`hashing embedder: dimensions must be an integer >= 2, got ${dimensions}`);
  }
  const scratch = new Float64Array(dimensions);
  return {
    name: 'hashing',
    dimensions,
    async embed(texts, signal) {
      signal?.throwIfAborted();
      return texts.map((text) => hashingEmbed(text, dimensions, scratch));
    },
    async healthCheck() {},
  };
}

/** Embeds one text. `scratch` (length `dimensions`) is reused between calls to avoid garbage. */
export function hashingEmbed(text: string, dimensions: number, scratch = new Float64Array(dimensions)): Float32Array {
  scratch.fill(0);
  const normalized = text.normalize('NFKC').toLowerCase();
  const features = addWordFeatures(normalized, dimensions, scratch);
  // Text without letters or digits ("!!!", ""): one feature of the whole text keeps the vector
  // non-zero (a zero vector has no cosine) and still separates different such texts.
  if (features === 0) addFeature(scratch, dimensions, fmix32(fnv(normalized, 0, normalized.length, SEED_WORD)), 1);
  return normalize(scratch);
}

/** Scans words and adds their features; returns how many words were found. */
function addWordFeatures(text: string, dimensions: number, acc: Float64Array): number {
  let words = 0;
  let previous = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && !isWordUnit(text, i)) i++;
    const start = i;
    while (i < n && isWordUnit(text, i)) i++;
    if (i === start) break;
    const word = fmix32(fnv(text, start, i, SEED_WORD));
    addFeature(acc, dimensions, word, WORD_WEIGHT);
    if (words > 0)
      addFeature(acc, dimensions, fmix32(Math.imul(previous ^ SEED_BIGRAM, FNV_PRIME) ^ word), BIGRAM_WEIGHT);
    addNgrams(text, start, i, dimensions, acc);
    previous = word;
    words++;
  }
  return words;
}

/** Character 3..5-grams of " word " (boundaries included), hashed incrementally per start. */
function addNgrams(text: string, start: number, end: number, dimensions: number, acc: Float64Array): void {
  const length = end - start + 2;
  for (let from = 0; from + MIN_NGRAM <= length; from++) {
    let h = SEED_NGRAM;
    const last = Math.min(length, from + MAX_NGRAM);
    for (let at = from; at < last; at++) {
      const unit = at === 0 || at === length - 1 ? BOUNDARY : text.charCodeAt(start + at - 1);
      h = Math.imul(h ^ unit, FNV_PRIME);
      if (at - from + 1 >= MIN_NGRAM) addFeature(acc, dimensions, fmix32(h), NGRAM_WEIGHT);
    }
  }
}

function addFeature(acc: Float64Array, dimensions: number, hash: number, weight: number): void {
  // Top bit: sign; the other 31 bits pick the bucket by multiply-shift (faster than a modulo,
  // and exact: 31 bits times the dimensions stays far below 2^53).
  const bucket = ((hash & 0x7fffffff) * dimensions * 4.656612873077393e-10) | 0;
  acc[bucket] = acc[bucket]! + (hash < 0 ? -weight : weight);
}

function normalize(acc: Float64Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < acc.length; i++) sum += acc[i]! * acc[i]!;
  const out = new Float32Array(acc.length);
  if (sum === 0) return out; // only when every feature cancelled out: practically never
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < acc.length; i++) out[i] = acc[i]! * scale;
  return out;
}

function fnv(text: string, start: number, end: number, seed: number): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

/** murmur3's 32-bit finaliser; returns a signed 32-bit integer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

// Word-unit test: ASCII by range; other BMP units by a Unicode property test, cached per unit.
// Surrogates (astral letters such as rare CJK) count as word units so they stay in their word.
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;
const unitClass = new Uint8Array(0x10000); // 0 unknown, 1 word, 2 not a word

function isWordUnit(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0x80) return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a);
  if (c >= 0xd800 && c <= 0xdfff) return true;
  let cls = unitClass[c]!;
  if (cls === 0) unitClass[c] = cls = WORD_CHAR.test(String.fromCharCode(c)) ? 1 : 2;
  return cls === 1;
}
