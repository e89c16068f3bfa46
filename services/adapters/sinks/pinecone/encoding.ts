/**
 * Turning sink calls into Pinecone requests, and Pinecone records back into stored chunks. Pure,
 * tested without Pinecone.
 *
 * Layout in Pinecone: one index per model, one namespace per tenant (named exactly by the tenant
 * id), one record per chunk with the chunk id `tenant:document#index` as its id. Record metadata:
 *
 * | key | value |
 * |---|---|
 * | `document_id`, `chunk_index` | where the chunk belongs (also in the id, but filterable here) |
 * | `document_version`, `acl_version` | the versions the ledger wrote; the reconciler compares them |
 * | `acl` | list of principals; search filters `{acl: {$in: [principal]}}` |
 * | `model` | the model key |
 * | `content_hash` | hex sha256 of the chunk text |
 * | allowlisted metadata | flattened to Pinecone's types (string, number, boolean, list of strings) |
 *
 * Pinecone refuses null metadata values, nested objects and records over 40 KB of metadata: nulls
 * are dropped, nested values become JSON strings, and a document whose allowlisted metadata is
 * still too large is a poison message (it would fail the same way on every attempt). An ACL too
 * large to fit fails closed instead (the sink writes an empty one and reports the item).
 */
import { PoisonMessageError } from '../../../domain/errors.ts';
import { chunkId, parseChunkId } from '../../../domain/types.ts';
import type { AclWrite, ChunkVector, DocumentWrite, StoredChunk, StoredDocument } from '../types.ts';
import type { FenceRow } from '../fence.ts';
import { checkDocumentWrite as checkWrite, chunkCountIn, invalidWrite } from '../validate.ts';

/** Pinecone's metadata value types. */
export type MetadataValue = string | number | boolean | string[];
export type Metadata = Record<string, MetadataValue>;

/** Keys the sink owns; allowlisted metadata with the same name is not stored (ours win). */
export const RESERVED_METADATA_KEYS = [
  'document_id',
  'chunk_index',
  'document_version',
  'acl_version',
  'acl',
  'model',
  'content_hash',
] as const;
const RESERVED = new Set<string>(RESERVED_METADATA_KEYS);

/** Pinecone's id limit: 512 bytes. */
export const MAX_VECTOR_ID_BYTES = 512;
/** Pinecone's namespace name limit. */
export const MAX_NAMESPACE_BYTES = 512;

// ---- metadata ----------------------------------------------------------------------------------

function scalar(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}

/**
 * One allowlisted metadata value in Pinecone's types, or undefined to drop it: null is dropped
 * (Pinecone refuses nulls), a list becomes a list of strings (nulls dropped, other elements as
 * strings or JSON), an object becomes its JSON text (Pinecone metadata is flat).
 */
export function toMetadataValue(value: unknown): MetadataValue | undefined {
  if (value === null || value === undefined) return undefined;
  const s = scalar(value);
  if (s !== undefined) return s;
  if (Array.isArray(value)) {
    const out: string[] = [];
    for (const element of value) {
      if (element === null || element === undefined) continue;
      const e = scalar(element);
      out.push(e === undefined ? JSON.stringify(element) : String(e));
    }
    return out;
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return undefined;
}

/** The document's allowlisted metadata as Pinecone metadata: nulls dropped, reserved keys left out. */
export function documentMetadata(metadata: Record<string, unknown>): Metadata {
  const out: Metadata = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (RESERVED.has(key) || key.startsWith('$')) continue;
    const converted = toMetadataValue(value);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

export interface ChunkFacts {
  documentId: string;
  chunkIndex: number;
  documentVersion: number;
  acl: string[];
  aclVersion: number;
  modelKey: string;
  contentHash: string;
}

export function chunkMetadata(base: Metadata, facts: ChunkFacts): Metadata {
  return {
    ...base,
    document_id: facts.documentId,
    chunk_index: facts.chunkIndex,
    document_version: facts.documentVersion,
    acl_version: facts.aclVersion,
    acl: facts.acl,
    model: facts.modelKey,
    content_hash: facts.contentHash,
  };
}

export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

// ---- validation --------------------------------------------------------------------------------

export interface WriteLimits {
  dimensions: number;
  maxMetadataBytes: number;
  /** Upsert request limit: one record must fit in a request on its own. */
  maxUpsertBytes: number;
}

/**
 * Why a document write can never succeed in Pinecone, or null: the shared checks (`validate.ts`),
 * then per chunk a vector id over 512 bytes, allowlisted metadata over Pinecone's 40 KB per record
 * (without the ACL: an ACL that does not fit fails closed when written, see the sink), and a
 * record that could not fit an upsert request on its own.
 */
export function checkDocumentWrite(
  write: DocumentWrite,
  limits: WriteLimits,
  modelKey: string,
): PoisonMessageError | null {
  let base: Metadata | undefined;
  return checkWrite(write, limits.dimensions, {
    chunk: (w, chunk, at) => {
      const id = chunkId(w.tenantId, w.documentId, chunk.index);
      if (Buffer.byteLength(id, 'utf8') > MAX_VECTOR_ID_BYTES) {
        return invalidWrite(`${at}: the vector id is longer than ${MAX_VECTOR_ID_BYTES} bytes`);
      }
      base ??= documentMetadata(w.metadata);
      const bytes = jsonBytes(
        chunkMetadata(base, chunkFacts(w, chunk, { principals: [], aclVersion: w.acl?.aclVersion ?? 0 }, modelKey)),
      );
      if (bytes > limits.maxMetadataBytes) {
        return new PoisonMessageError(
          'metadata_too_large',
          `${at}: ${bytes} bytes of allowlisted metadata; Pinecone allows ${limits.maxMetadataBytes} per record`,
        );
      }
      // A record alone over the request limit could never be sent (e.g. tens of thousands of dimensions).
      if (bytes + 30 * limits.dimensions + MAX_VECTOR_ID_BYTES > limits.maxUpsertBytes) {
        return invalidWrite(
          `${at}: one record would exceed the upsert request limit of ${limits.maxUpsertBytes} bytes`,
        );
      }
      return null;
    },
  });
}

/** JSON bytes an ACL adds to a record's metadata (`"acl":[...]`). */
export function aclBytes(principals: readonly string[]): number {
  return jsonBytes({ acl: principals }) - 2;
}

function chunkFacts(
  write: DocumentWrite,
  chunk: ChunkVector,
  acl: { principals: readonly string[]; aclVersion: number },
  modelKey: string,
): ChunkFacts {
  return {
    documentId: write.documentId,
    chunkIndex: chunk.index,
    documentVersion: write.documentVersion,
    acl: [...acl.principals],
    aclVersion: acl.aclVersion,
    modelKey,
    contentHash: chunk.contentHash,
  };
}

/** The upsert records of a document's chunks, carrying `acl`. */
export function chunkRecords(
  write: DocumentWrite,
  acl: { principals: readonly string[]; aclVersion: number },
  modelKey: string,
): UpsertRecord[] {
  const base = documentMetadata(write.metadata);
  return write.chunks.map((chunk) => ({
    id: chunkId(write.tenantId, write.documentId, chunk.index),
    values: Array.from(chunk.embedding),
    metadata: chunkMetadata(base, chunkFacts(write, chunk, acl, modelKey)),
  }));
}

/** One per-record ACL update: `position` is the write's index in the given list. */
export interface AclUpdate {
  position: number;
  namespace: string;
  id: string;
  metadata: Metadata;
}

/**
 * The per-record updates that put each write's ACL (`empty`: an empty ACL, fail closed) on every
 * chunk of its document in the index of `modelKey`: ids `#0..#n-1`, `n` being that model's chunk
 * count (`chunkCountIn`), not another model's.
 */
export function aclUpdates(writes: readonly AclWrite[], modelKey: string, empty = false): AclUpdate[] {
  return writes.flatMap((w, position) =>
    idRange(w.tenantId, w.documentId, 0, chunkCountIn(w, modelKey)).map((id) => ({
      position,
      namespace: w.tenantId,
      id,
      metadata: { acl: empty ? [] : [...w.principals], acl_version: w.aclVersion },
    })),
  );
}

// ---- requests ----------------------------------------------------------------------------------

/** One upsert record as the SDK serializes it (`VectorToJSON`: id, values, metadata). */
export interface UpsertRecord {
  id: string;
  values: number[];
  metadata: Metadata;
}

export interface SizedRecord {
  record: UpsertRecord;
  /** JSON bytes of the record inside the request body. */
  bytes: number;
}

export function sizeRecord(record: UpsertRecord): SizedRecord {
  return { record, bytes: jsonBytes({ id: record.id, values: record.values, metadata: record.metadata }) };
}

/** Bytes of an upsert body without records: `{"vectors":[],"namespace":"<ns>"}`. */
export function upsertOverheadBytes(namespace: string): number {
  return jsonBytes({ vectors: [], namespace });
}

/** JSON bytes of the body `{"vectors":[...],"namespace":ns}` the SDK sends for these records. */
export function upsertBodyBytes(namespace: string, records: readonly SizedRecord[]): number {
  const sum = records.reduce((n, r) => n + r.bytes, 0);
  return upsertOverheadBytes(namespace) + sum + Math.max(0, records.length - 1);
}

export interface UpsertLimits {
  maxVectors: number;
  maxBytes: number;
}

/**
 * Cuts records into upsert requests of at most `maxVectors` records and `maxBytes` JSON bytes
 * (the exact body size: overhead, records and the commas between them), in order.
 */
export function packUpserts(namespace: string, records: readonly SizedRecord[], limits: UpsertLimits): SizedRecord[][] {
  const overhead = upsertOverheadBytes(namespace);
  const batches: SizedRecord[][] = [];
  let current: SizedRecord[] = [];
  let size = overhead;
  for (const record of records) {
    if (overhead + record.bytes > limits.maxBytes) {
      throw new RangeError(`record ${record.record.id} alone (${record.bytes} bytes) exceeds ${limits.maxBytes} bytes`);
    }
    const next = size + record.bytes + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && (current.length >= limits.maxVectors || next > limits.maxBytes)) {
      batches.push(current);
      current = [];
      size = overhead;
    }
    size += record.bytes + (current.length > 0 ? 1 : 0);
    current.push(record);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Consecutive slices of at most `size` items. */
export function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Fetch batches: at most `maxIds` ids and at most `maxChars` characters of encoded ids in the
 * query string (`ids=<id>&ids=<id>...`): fetch is a GET, and URLs have limits.
 */
export function fetchBatches(ids: readonly string[], maxIds: number, maxChars: number): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const id of ids) {
    const cost = 'ids='.length + encodeURIComponent(id).length + 1;
    if (current.length > 0 && (current.length >= maxIds || chars + cost > maxChars)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(id);
    chars += cost;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** The chunk ids `#from` .. `#to-1` of a document. */
export function idRange(tenantId: string, documentId: string, from: number, to: number): string[] {
  const ids: string[] = [];
  for (let i = from; i < to; i++) ids.push(chunkId(tenantId, documentId, i));
  return ids;
}

/** The `list` prefix of a document's chunks. */
export function documentPrefix(tenantId: string, documentId: string): string {
  return `${tenantId}:${documentId}#`;
}

/**
 * The chunk indexes among listed ids that belong to exactly this document. A prefix is not enough:
 * `t:a#` also lists the chunks of document `a#1` (`t:a#1#0`), which must never be touched.
 */
export function ownChunkIndexes(tenantId: string, documentId: string, ids: readonly string[]): number[] {
  const out: number[] = [];
  for (const id of ids) {
    const parsed = tryParseChunkId(id);
    if (parsed && parsed.tenant_id === tenantId && parsed.document_id === documentId) out.push(parsed.chunk_index);
  }
  return out;
}

export function tryParseChunkId(id: string): ReturnType<typeof parseChunkId> | undefined {
  try {
    return parseChunkId(id);
  } catch {
    return undefined;
  }
}

/**
 * Ids to delete after writing `chunkCount` chunks, so a shrinking document leaves no orphans:
 * `#chunkCount .. #upper-1`, where `upper` is the previous chunk count when the ledger gave it
 * (plus what this call wrote earlier), else `maxChunks` (the most any document can have). Deleting
 * by id needs no listing, so chunks written a moment ago (not yet visible to `list`) go too.
 * Listed ids of the document beyond the range (older orphans) are added.
 */
export function shrinkIds(
  write: Pick<DocumentWrite, 'tenantId' | 'documentId' | 'chunkCount' | 'previousChunkCount'>,
  maxChunks: number,
  writtenEarlier: number,
  listedIndexes: readonly number[] = [],
): string[] {
  const upper = Math.max(write.previousChunkCount ?? maxChunks, writtenEarlier);
  const ids = idRange(write.tenantId, write.documentId, write.chunkCount, upper);
  const extra = [...new Set(listedIndexes)].filter((i) => i >= Math.max(upper, write.chunkCount)).sort((a, b) => a - b);
  for (const i of extra) ids.push(chunkId(write.tenantId, write.documentId, i));
  return ids;
}

// ---- reading -------------------------------------------------------------------------------------

function numberOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * A stored record as a `StoredChunk`. Ids that are not chunk ids (written by something else) are
 * skipped; missing metadata reads as version 0 and an empty ACL, which the reconciler reports as
 * stale rather than hiding.
 */
export function decodeRecord(
  namespace: string,
  id: string,
  metadata: Record<string, unknown> | undefined,
  values: number[] | undefined,
  withValues: boolean,
): StoredChunk | undefined {
  const parsed = tryParseChunkId(id);
  if (!parsed || parsed.tenant_id !== namespace) return undefined;
  const m = metadata ?? {};
  const acl = Array.isArray(m.acl) ? m.acl.filter((p): p is string => typeof p === 'string') : [];
  const chunk: StoredChunk = {
    tenant_id: namespace,
    document_id: typeof m.document_id === 'string' ? m.document_id : parsed.document_id,
    chunk_index: numberOf(m.chunk_index) ?? parsed.chunk_index,
    document_version: numberOf(m.document_version) ?? 0,
    acl_version: numberOf(m.acl_version) ?? 0,
    acl,
    model: typeof m.model === 'string' ? m.model : '',
    content_hash: typeof m.content_hash === 'string' ? m.content_hash : '',
  };
  if (withValues && values !== undefined) chunk.embedding = values.map((x) => Math.fround(x));
  return chunk;
}

/** Byte order of UTF-8 strings: PostgreSQL's C collation, and Pinecone's `list` order. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function compareChunks(a: StoredChunk, b: StoredChunk): number {
  return compareBytes(a.document_id, b.document_id) || a.chunk_index - b.chunk_index;
}

/**
 * A document as the reconciler sees it: the lowest version of its chunks (one stale chunk makes
 * the document stale), and the ACL of its chunk with the lowest ACL version (an ACL change that
 * reached only some chunks shows as a mismatch).
 */
export function storedDocument(chunks: readonly StoredChunk[]): StoredDocument {
  const first = chunks[0];
  if (!first) throw new RangeError('a stored document has at least one chunk');
  let oldestAcl = first;
  let version = first.document_version;
  for (const c of chunks) {
    if (c.acl_version < oldestAcl.acl_version) oldestAcl = c;
    version = Math.min(version, c.document_version);
  }
  return {
    documentId: first.document_id,
    documentVersion: version,
    aclVersion: oldestAcl.acl_version,
    acl: [...oldestAcl.acl],
    chunkIndexes: chunks.map((c) => c.chunk_index).sort((a, b) => a - b),
  };
}

// ---- tombstone markers (the sink's fence, see docs/pinecone.md) ---------------------------------

/**
 * The id of a document's tombstone marker: `tenant:document~tombstone`. Never a chunk id (chunk ids
 * end in `#<index>`) and outside the document's `tenant:document#` prefix, so listings, the
 * reconciler and `inspect` skip it, deletes of the document's chunks never remove it, and search
 * never finds it (it has no `acl`).
 */
export function tombstoneId(tenantId: string, documentId: string): string {
  return `${tenantId}:${documentId}~tombstone`;
}

/** The marker record of a delete: a unit vector (cosine refuses zeros) and the delete's versions. */
export function tombstoneRecord(
  ref: { tenantId: string; documentId: string; version: number; aclVersion?: number },
  dimensions: number,
): UpsertRecord {
  const values = new Array<number>(dimensions).fill(0);
  values[0] = 1;
  return {
    id: tombstoneId(ref.tenantId, ref.documentId),
    values,
    metadata: {
      vecsync_tombstone: true,
      document_id: ref.documentId,
      document_version: ref.version,
      acl_version: ref.aclVersion ?? 0,
    },
  };
}

/** A fetched marker as the fence row it stands for (see `../fence.ts`), or undefined. */
export function decodeTombstone(metadata: Record<string, unknown> | undefined): FenceRow | undefined {
  if (!metadata || metadata.vecsync_tombstone !== true) return undefined;
  const version = numberOf(metadata.document_version);
  if (version === undefined) return undefined;
  return { version, tombstone: true, aclVersion: numberOf(metadata.acl_version) ?? 0 };
}
