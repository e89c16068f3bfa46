/**
 * `minilm`, the default embedder: all-MiniLM-L6-v2 (quantized ONNX, 384 dimensions) run in this
 * process with onnxruntime-node on the CPU, tokenized by @huggingface/tokenizers (BERT WordPiece,
 * lowercasing), mean-pooled over the attention mask and L2-normalised, as sentence-transformers
 * does.
 *
 * - Files: fetched from Maven Central on first use and cached (`files.ts`).
 * - Loading is lazy and shared: the first `embed`, `healthCheck` or `warmUp` loads the model once;
 *   a failed load is retried by the next call.
 * - Batching: the texts of one call run in inference batches of `batchSize`, grouped by length
 *   so that little compute goes to padding; results come back in input order. The quantized
 *   model scales its activations per inference, so above 1 a vector depends slightly on the
 *   texts beside it; with 1 (the default) it depends only on its own text.
 * - Threads: `threads` intra-op threads per inference (one session, one inference at a time), on
 *   a worker thread of its own (`inference.ts`), so the service's thread never waits on the model.
 * - Truncation: an input longer than `maxTokens` word pieces is embedded from its first
 *   `maxTokens - 2` pieces (see `encode.ts`); the chunker's default 800-character chunks fit.
 */
import fs from 'node:fs/promises';
import type { Tokenizer } from '@huggingface/tokenizers';
import { ConfigError } from '../../../domain/errors.ts';
import type { Embedder, EmbedderSettings } from '../embedder.ts';
import { DEFAULT_MAX_TOKENS, MODEL_MAX_POSITIONS, lengthBatches, meanPool, pack, truncate } from './encode.ts';
import { ensureModelFiles } from './files.ts';
import { startInference, type Inference } from './inference.ts';

export const MINILM_DIMENSIONS = 384;

export interface MinilmSettings {
  /** Intra-op threads of the ONNX session (VECSYNC_MINILM_THREADS). */
  threads: number;
  /** Inputs per inference (VECSYNC_MINILM_BATCH_SIZE). */
  batchSize: number;
  /** Word pieces per input, [CLS] and [SEP] included (VECSYNC_MINILM_MAX_TOKENS). */
  maxTokens?: number;
  /** Where the model files are cached (VECSYNC_MINILM_CACHE_DIR). */
  cacheDir: string;
  /** Maven's log while fetching. */
  mavenLog?: string;
}

/** The loaded model: what `embed` needs, plus facts for benchmarks and logs. */
export interface LoadedModel {
  tokenizer: Tokenizer;
  inference: Inference;
  fetched: boolean;
  loadMs: number;
}

export type MinilmEmbedder = Embedder & {
  /** Loads the model now (fetching it on first use); resolves to the loaded model. */
  warmUp(): Promise<void>;
  /** Token ids of one text, after truncation (for tests and diagnostics). */
  tokenize(text: string): Promise<number[]>;
  /** Texts whose input was cut to `maxTokens` so far. */
  readonly truncatedCount: number;
  /** Releases the ONNX session; a later call loads it again. */
  close(): Promise<void>;
};

export function createMinilm(
  settings: Pick<EmbedderSettings, 'dimensions' | 'log'> & { minilm?: MinilmSettings },
): MinilmEmbedder {
  const { dimensions, log } = settings;
  if (dimensions !== MINILM_DIMENSIONS) {
    throw new ConfigError(
      `minilm embedder: VECSYNC_EMBEDDING_DIMENSIONS must be ${MINILM_DIMENSIONS} (the model's), got ${dimensions}`,
    );
  }
  const minilm = settings.minilm;
  if (!minilm) throw new ConfigError('minilm embedder: settings.minilm (threads, batch size, cache dir) missing');
  const maxTokens = minilm.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 3 || maxTokens > MODEL_MAX_POSITIONS) {
    throw new ConfigError(
      `minilm embedder: max tokens must be an integer in 3..${MODEL_MAX_POSITIONS}, got ${maxTokens}`,
    );
  }
  for (const [name, value] of [
    ['threads', minilm.threads],
    ['batch size', minilm.batchSize],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new ConfigError(`minilm embedder: ${name} must be a positive integer, got ${value}`);
  }

  let loading: Promise<LoadedModel> | undefined;
  let truncatedCount = 0;

  // The tokenizer is imported (and the inference thread started) on first use, so processes that
  // never embed with minilm (the hashing tests, most CLI commands) do not load them.
  async function load(): Promise<LoadedModel> {
    const started = performance.now();
    const { Tokenizer } = await import('@huggingface/tokenizers');
    const files = await ensureModelFiles({
      cacheDir: minilm!.cacheDir,
      ...(minilm!.mavenLog ? { mavenLog: minilm!.mavenLog } : {}),
      say: (line) => log?.info(line),
    });
    const tokenizer = new Tokenizer(JSON.parse(await fs.readFile(files.tokenizer, 'utf8')) as object, {});
    const inference = await startInference(files.onnx, minilm!.threads);
    const loaded = { tokenizer, inference, fetched: files.fetched, loadMs: performance.now() - started };
    log?.info(
      { fetched: loaded.fetched, loadMs: Math.round(loaded.loadMs), threads: minilm!.threads, dir: files.dir },
      'minilm model loaded',
    );
    return loaded;
  }

  function model(): Promise<LoadedModel> {
    loading ??= load().catch((error: unknown) => {
      loading = undefined; // the next call tries again (e.g. Maven Central was unreachable)
      throw error;
    });
    return loading;
  }

  function encode(tokenizer: Tokenizer, text: string, count = true): number[] {
    const cut = truncate(tokenizer.encode(text).ids, maxTokens);
    if (cut.truncated && count) truncatedCount++;
    return cut.ids;
  }

  return {
    name: 'minilm',
    dimensions,
    computeBatch: minilm.batchSize,
    get truncatedCount() {
      return truncatedCount;
    },
    async embed(texts, signal) {
      signal?.throwIfAborted();
      if (texts.length === 0) return [];
      const { tokenizer, inference } = await model();
      const encoded = texts.map((t) => encode(tokenizer, t));
      const out = new Array<Float32Array>(texts.length);
      for (const indices of lengthBatches(
        encoded.map((e) => e.length),
        minilm.batchSize,
      )) {
        signal?.throwIfAborted();
        const packed = pack(indices.map((i) => encoded[i]!));
        const vectors = meanPool(await inference.run(packed), packed, MINILM_DIMENSIONS);
        indices.forEach((i, j) => (out[i] = vectors[j]!));
      }
      return out;
    },
    async healthCheck() {
      const [v] = await this.embed(['vecsync health check']);
      if (v?.length !== dimensions) throw new ConfigError(`minilm embedder: model answered ${v?.length} dimensions`);
    },
    async warmUp() {
      await model();
    },
    async tokenize(text) {
      return encode((await model()).tokenizer, text, false);
    },
    async close() {
      const current = loading;
      loading = undefined;
      if (current) await (await current.catch(() => undefined))?.inference.release();
    },
  };
}
