/**
 * Drift: the difference between what the sink should hold (the source of truth plus the ledger's
 * chunk counts) and what it holds. Pure; the reconciler (services/reconciler) feeds it and prints
 * `reconcile --json`.
 *
 * Kinds (each counted per document, except `orphan_chunks`, which counts chunks):
 * - `missing`: should be searchable and has chunks to hold, but the sink lacks them: all of them,
 *   or some index below the chunk count (a hole);
 * - `ghost`: the sink holds chunks of a document that is deleted, archived or unknown;
 * - `stale`: the sink holds another content version than the source (behind, or ahead);
 * - `acl_mismatch`: the sink's ACL differs from the source's;
 * - `orphan_chunks`: chunks with an index at or past the chunk count (left from a longer version);
 * - `count_mismatch`: per tenant, by how many documents the counts of searchable documents in the
 *   source, in the state topic and in the sink disagree (max − min of the three). Only settled,
 *   document-level findings move it: a whole missing document lowers the sink's count, a whole ghost
 *   raises it, and the state topic's count moves with its own missing and extra keys (see
 *   `DriftTally.stateTopic`). Its samples are tenant ids, not document keys.
 * The chunk checks only run when the versions agree and the chunk count is known: counts belong to
 * one version.
 */
import crypto, { createHash } from 'node:crypto';
import { sameAcl } from './acl.ts';

/** What the sink should hold for one document. */
export interface ExpectedDocument {
  tenant_id: string;
  document_id: string;
  version: number;
  acl_version: number;
  acl: readonly string[];
  /** Not searchable (hard delete, deleted, archived): the sink must hold no chunk of it. */
  deleted: boolean;
  /**
   * Chunks of `version` (from the ledger); 0 for an empty body. null when unknown (the ledger has
   * not recorded this version): then only presence, version and ACL are judged.
   */
  chunk_count: number | null;
}

/** What the sink holds for one document (built from its chunks). */
export interface SinkDocument {
  tenant_id: string;
  document_id: string;
  /** `document_version` of its chunks (the lowest, if they disagree). */
  version: number;
  acl: readonly string[];
  chunk_indexes: readonly number[];
}

export const DriftKind = {
  missing: 'missing',
  ghost: 'ghost',
  stale: 'stale',
  aclMismatch: 'acl_mismatch',
  orphanChunks: 'orphan_chunks',
  countMismatch: 'count_mismatch',
} as const;
export type DriftKind = (typeof DriftKind)[keyof typeof DriftKind];
export type DriftCounts = Record<DriftKind, number>;
export const DRIFT_KINDS: readonly DriftKind[] = Object.values(DriftKind);

/** Per tenant: settled searchable documents as each side counts them. */
export interface TenantCounts {
  source: number;
  state_topic: number;
  sink: number;
}

export interface DriftReport {
  /** Totals over every tenant. */
  drift: DriftCounts;
  /** Per tenant, for every tenant seen on either side (or in scope). */
  tenants: Record<string, DriftCounts>;
  /**
   * Up to `sampleSize` document keys (`tenant:document`) per kind, for drill-down; tenant ids for
   * `count_mismatch`.
   */
  samples: Record<DriftKind, string[]>;
}

export function emptyCounts(): DriftCounts {
  return { missing: 0, ghost: 0, stale: 0, acl_mismatch: 0, orphan_chunks: 0, count_mismatch: 0 };
}

/** true when any kind has a non-zero count. */
export function hasDrift(counts: DriftCounts): boolean {
  return DRIFT_KINDS.some((kind) => counts[kind] > 0);
}

/** Compares expected and sink state; every document appears at most once on each side. */
export function diffDrift(
  expected: Iterable<ExpectedDocument>,
  sink: Iterable<SinkDocument>,
  options: { sampleSize?: number } = {},
): DriftReport {
  const tally = new DriftTally(options.sampleSize);
  const held = new Map<string, SinkDocument>();
  for (const doc of sink) {
    if (doc.chunk_indexes.length > 0) held.set(keyOf(doc), doc);
    tally.tenant(doc.tenant_id);
  }
  for (const want of expected) {
    const key = keyOf(want);
    tally.tenant(want.tenant_id);
    const have = held.get(key);
    held.delete(key);
    tally.document(want.tenant_id, key, want, have);
  }
  // Whatever the sink holds that nobody expects.
  for (const [key, doc] of held) tally.document(doc.tenant_id, key, undefined, doc);
  return tally.report();
}

/**
 * Drift kinds of one document, with their amounts. `want` undefined: the source does not know the
 * document at all; `have` undefined (or without chunks): the sink holds nothing of it.
 */
export function classifyDocument(
  want: ExpectedDocument | undefined,
  have: SinkDocument | undefined,
): [DriftKind, number][] {
  const held = have !== undefined && have.chunk_indexes.length > 0 ? have : undefined;
  if (want === undefined || want.deleted) return held ? [[DriftKind.ghost, 1]] : [];
  if (!held) return want.chunk_count !== 0 ? [[DriftKind.missing, 1]] : [];
  const found: [DriftKind, number][] = [];
  if (!sameAcl(want.acl, held.acl)) found.push([DriftKind.aclMismatch, 1]);
  if (held.version !== want.version) return [[DriftKind.stale, 1], ...found];
  if (want.chunk_count === null) return found;
  const indexes = new Set(held.chunk_indexes);
  let orphans = 0;
  for (const i of indexes) if (i >= want.chunk_count) orphans++;
  if (orphans > 0) found.push([DriftKind.orphanChunks, orphans]);
  for (let i = 0; i < want.chunk_count; i++) {
    if (!indexes.has(i)) {
      found.push([DriftKind.missing, 1]);
      break;
    }
  }
  return found;
}

interface TenantTally {
  counts: DriftCounts;
  /** Whole documents: ghosts raise the sink's count, whole missing documents lower it. */
  sinkDelta: number;
  /** Keys the state topic has as searchable that the source has not, minus the reverse. */
  stateDelta: number;
}

/**
 * Accumulates document-level findings into a `DriftReport`, one document at a time, so a caller can
 * stream documents through it without holding them. `count_mismatch` is derived at `report()` from
 * the whole-document findings of each tenant.
 */
export class DriftTally {
  readonly #sampleSize: number;
  readonly #tenants = new Map<string, TenantTally>();
  readonly #samples: Record<DriftKind, string[]> = emptySamples();

  constructor(sampleSize = 10) {
    this.#sampleSize = sampleSize;
  }

  /** Makes the tenant appear in the report (with zeros when nothing is found). */
  tenant(tenantId: string): void {
    this.#entry(tenantId);
  }

  /** Classifies one document and records what it finds; returns the kinds found. */
  document(
    tenantId: string,
    key: string,
    want: ExpectedDocument | undefined,
    have: SinkDocument | undefined,
  ): [DriftKind, number][] {
    const found = classifyDocument(want, have);
    this.record(tenantId, key, found, wholeDocumentFinding(found, have));
    return found;
  }

  /** Records findings computed elsewhere (`classifyDocument`); `whole` feeds `count_mismatch`. */
  record(tenantId: string, key: string, found: [DriftKind, number][], whole?: 'missing' | 'ghost'): void {
    const entry = this.#entry(tenantId);
    for (const [kind, amount] of found) {
      entry.counts[kind] += amount;
      if (this.#samples[kind].length < this.#sampleSize) this.#samples[kind].push(key);
    }
    if (whole === 'ghost') entry.sinkDelta++;
    else if (whole === 'missing') entry.sinkDelta--;
  }

  /** A settled key the state topic counts as searchable although the source does not (+1), or the reverse (−1). */
  stateTopic(tenantId: string, delta: 1 | -1): void {
    this.#entry(tenantId).stateDelta += delta;
  }

  /**
   * The report. With `sourceCounts` (settled searchable documents per tenant), also the counts of
   * every side, as `counts`.
   */
  report(sourceCounts?: ReadonlyMap<string, number>): DriftReport & { counts?: Record<string, TenantCounts> } {
    const drift = emptyCounts();
    const tenants: Record<string, DriftCounts> = {};
    const counts: Record<string, TenantCounts> = {};
    const samples = emptySamples();
    for (const kind of DRIFT_KINDS) samples[kind] = [...this.#samples[kind]];
    for (const tenant of [...this.#tenants.keys()].sort()) {
      const entry = this.#tenants.get(tenant)!;
      const row = { ...entry.counts };
      row.count_mismatch =
        Math.max(0, entry.sinkDelta, entry.stateDelta) - Math.min(0, entry.sinkDelta, entry.stateDelta);
      if (row.count_mismatch > 0 && samples.count_mismatch.length < this.#sampleSize) {
        samples.count_mismatch.push(tenant);
      }
      for (const kind of DRIFT_KINDS) drift[kind] += row[kind];
      tenants[tenant] = row;
      if (sourceCounts) {
        const source = sourceCounts.get(tenant) ?? 0;
        counts[tenant] = { source, state_topic: source + entry.stateDelta, sink: source + entry.sinkDelta };
      }
    }
    return sourceCounts ? { drift, tenants, samples, counts } : { drift, tenants, samples };
  }

  #entry(tenantId: string): TenantTally {
    let entry = this.#tenants.get(tenantId);
    if (!entry) this.#tenants.set(tenantId, (entry = { counts: emptyCounts(), sinkDelta: 0, stateDelta: 0 }));
    return entry;
  }
}

/** Whether findings concern a whole document (they change the sink's document count). */
export function wholeDocumentFinding(
  found: [DriftKind, number][],
  have: SinkDocument | undefined,
): 'missing' | 'ghost' | undefined {
  const held = have !== undefined && have.chunk_indexes.length > 0;
  if (found.some(([kind]) => kind === DriftKind.ghost)) return 'ghost';
  if (!held && found.some(([kind]) => kind === DriftKind.missing)) return 'missing';
  return undefined;
}

function keyOf(doc: { tenant_id: string; document_id: string }): string {
  return `${doc.tenant_id}:${doc.document_id}`;
}

function emptySamples(): Record<DriftKind, string[]> {
  return { missing: [], ghost: [], stale: [], acl_mismatch: [], orphan_chunks: [], count_mismatch: [] };
}

// ---------------------------------------------------------------------------------------------
// Buckets: compare millions of documents by exchanging a few digests per tenant and bucket, then
// list only the buckets that differ.
// ---------------------------------------------------------------------------------------------

/**
 * The bucket of a document: the first 32 bits of md5(`tenant:document`) modulo `buckets`.
 * Computable in SQL (`bucketOfSql`), so a database can be asked for some buckets only.
 */
export function bucketOf(tenantId: string, documentId: string, buckets: number): number {
  return keyPrefix(`${tenantId}:${documentId}`) % buckets;
}

/**
 * `bucketOf` as a PostgreSQL expression over the given SQL expressions (column names or
 * parameters; never user input): `('x' || substr(md5(t || ':' || d), 1, 8))::bit(32)::bigint % b`.
 */
export function bucketOfSql(tenant: string, document: string, buckets: string): string {
  return `(('x' || substr(md5(${tenant} || ':' || ${document}), 1, 8))::bit(32)::bigint % ${buckets})`;
}

// ---------------------------------------------------------------------------------------------
// SQL-computable digests. The reconciler computes the source's side inside PostgreSQL (so only a
// few hashes per tenant and bucket leave the database) and the sink's and the state topic's side
// here; both must agree bit for bit. Every digest is the first 64 bits of md5 of UTF-8 text:
//   SQL: ('x' || substr(md5(<text>), 1, 16))::bit(64)::bigint   (signed there, two halves here)
// Separators are unambiguous because every field after the document key has a fixed alphabet
// (digits, hex): the text is parsed from the right. Digests are kept as two unsigned 32-bit halves
// so that the hot loops (one per sink document and state message) never allocate a BigInt.
// ---------------------------------------------------------------------------------------------

/** A 64-bit digest as two unsigned 32-bit halves. */
export interface Digest64 {
  hi: number;
  lo: number;
}

export const ZERO_DIGEST: Readonly<Digest64> = Object.freeze({ hi: 0, lo: 0 });

// crypto.hash (Node >= 20.12) is a one-shot digest, about four times faster than createHash.
const oneShot = (crypto as { hash?: (algorithm: string, data: string) => string }).hash;

/** md5 of `text` (UTF-8), lowercase hex, as PostgreSQL's md5(). */
export function md5Hex(text: string): string {
  return oneShot ? oneShot('md5', text) : createHash('md5').update(text, 'utf8').digest('hex');
}

/** The digest of the first 16 hex digits of `hex`. */
export function digestOfHex(hex: string): Digest64 {
  return { hi: parseInt(hex.slice(0, 8), 16), lo: parseInt(hex.slice(8, 16), 16) };
}

/** 16 hex digits; SQL: lpad(to_hex(<bigint>), 16, '0'). */
export function digestHex(d: Digest64): string {
  return d.hi.toString(16).padStart(8, '0') + d.lo.toString(16).padStart(8, '0');
}

/** From a bigint as PostgreSQL prints it (signed). */
export function digestOfSigned(text: string): Digest64 {
  const v = BigInt.asUintN(64, BigInt(text));
  return { hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) };
}

export function digestToBigInt(d: Digest64): bigint {
  return (BigInt(d.hi) << 32n) | BigInt(d.lo);
}

/**
 * Order-free digest of an ACL: XOR of the md5 digests of its distinct principals (zero when empty).
 * SQL: `coalesce(bit_xor(('x' || substr(md5(principal), 1, 16))::bit(64)::bigint), 0)` over the
 * document's `document_acl` rows (unique by primary key). `cache` memoizes per principal.
 */
export function aclDigest(acl: readonly string[], cache?: Map<string, Digest64>): Digest64 {
  let hi = 0;
  let lo = 0;
  // Sinks store sets, but be safe: a duplicate would cancel itself out of the XOR. Small lists
  // (the usual case) are deduplicated without allocating.
  const list = acl.length > 16 ? [...new Set(acl)] : acl;
  const small = list === acl;
  for (let i = 0; i < list.length; i++) {
    const principal = list[i]!;
    if (small && list.indexOf(principal) !== i) continue;
    let d = cache?.get(principal);
    if (d === undefined) {
      d = digestOfHex(md5Hex(principal));
      // Shared principals (groups) repeat; per-user ones rarely do. A small cache keeps the first.
      if (cache && cache.size < 10_000) cache.set(principal, d);
    }
    hi ^= d.hi;
    lo ^= d.lo;
  }
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

/**
 * Digest of what the sink holds (or should hold) for one document: identity, content version, ACL
 * and chunk layout. `chunkCount` is the number of chunks and `chunkEnd` the highest index plus one;
 * they are equal and match the expected chunk count exactly when the indexes are 0..n-1. An unknown
 * expected chunk count is written as -1/-1, which no sink document can produce (so the bucket is
 * always looked at in detail).
 * SQL: md5(key || '|' || version || '|' || lpad(to_hex(acl_digest), 16, '0') || '|' || n || '|' || n).
 */
export function heldDigest(
  tenantId: string,
  documentId: string,
  version: number,
  acl: Digest64,
  chunkCount: number,
  chunkEnd: number,
): Digest64 {
  return digestOfHex(md5Hex(`${tenantId}:${documentId}|${version}|${digestHex(acl)}|${chunkCount}|${chunkEnd}`));
}

/** `heldDigest` of a sink document. */
export function sinkDocumentDigest(doc: SinkDocument, cache?: Map<string, Digest64>): Digest64 {
  let end = 0;
  let count = 0;
  let sorted = true;
  let previous = -1;
  for (const i of doc.chunk_indexes) {
    if (i + 1 > end) end = i + 1;
    if (i <= previous) sorted = false;
    previous = i;
    count++;
  }
  // Sinks list indexes sorted and unique; count distinct ones otherwise.
  if (!sorted) count = new Set(doc.chunk_indexes).size;
  return heldDigest(doc.tenant_id, doc.document_id, doc.version, aclDigest(doc.acl, cache), count, end);
}

/**
 * Digest of a searchable document's state, as the state topic should carry it: identity, content
 * version and ACL version (which determine the rest, by the source's triggers).
 * SQL: md5(key || '|' || version || '|' || acl_version).
 */
export function stateDigest(tenantId: string, documentId: string, version: number, aclVersion: number): Digest64 {
  return digestOfHex(md5Hex(`${tenantId}:${documentId}|${version}|${aclVersion}`));
}

/** The bucket prefix of a document key: the first 32 bits of md5(`tenant:document`). */
export function keyPrefix(key: string): number {
  return parseInt(md5Hex(key).slice(0, 8), 16);
}

/** Per-bucket XOR of digests, and how many went into each bucket. */
export class DigestBuckets {
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  readonly count: Uint32Array;

  constructor(readonly buckets: number) {
    this.hi = new Uint32Array(buckets);
    this.lo = new Uint32Array(buckets);
    this.count = new Uint32Array(buckets);
  }

  add(bucket: number, d: Digest64): void {
    this.hi[bucket] = this.hi[bucket]! ^ d.hi;
    this.lo[bucket] = this.lo[bucket]! ^ d.lo;
    this.count[bucket]!++;
  }

  /** Sets a bucket's aggregate as computed elsewhere (PostgreSQL). */
  set(bucket: number, d: Digest64, count: number): void {
    this.hi[bucket] = d.hi;
    this.lo[bucket] = d.lo;
    this.count[bucket] = count;
  }

  /** Total of the counts. */
  total(): number {
    let n = 0;
    for (const c of this.count) n += c;
    return n;
  }
}

/** Buckets whose aggregates differ; a missing side counts as all empty. */
export function differingDigestBuckets(
  buckets: number,
  a: DigestBuckets | undefined,
  b: DigestBuckets | undefined,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < buckets; i++) {
    if (
      (a?.hi[i] ?? 0) !== (b?.hi[i] ?? 0) ||
      (a?.lo[i] ?? 0) !== (b?.lo[i] ?? 0) ||
      (a?.count[i] ?? 0) !== (b?.count[i] ?? 0)
    ) {
      out.push(i);
    }
  }
  return out;
}

/** Documents per bucket the reconciler aims for; a differing bucket costs about this many rows. */
export const DOCUMENTS_PER_BUCKET = 32;
/** Most buckets of one tenant (64 K × 12 bytes = 768 KiB per side). */
export const MAX_BUCKETS = 65_536;

/** Buckets for a tenant of about `documents` documents: a power of two in [1, MAX_BUCKETS]. */
export function bucketCount(documents: number, perBucket = DOCUMENTS_PER_BUCKET): number {
  let buckets = 1;
  while (buckets < MAX_BUCKETS && buckets * perBucket < documents) buckets *= 2;
  return buckets;
}
