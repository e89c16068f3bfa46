/**
 * Store-neutral item checks, shared by every sink. Pure, tested without a store.
 *
 * Each check says why an item can never succeed (a `PoisonMessageError`, dead-lettered without
 * retry), or returns null. They catch what would otherwise fail a whole batch request or silently
 * corrupt an index: ids that cannot form a chunk id, versions that are not integers, chunk indexes
 * outside [0, chunkCount) or repeated, embeddings of other dimensions or with NaN/Infinity.
 * A store adds its own limits through `StoreChecks` (Pinecone: id bytes, metadata size).
 */
import { ConfigError, PoisonMessageError } from '../../domain/errors.ts';
import { invalidIdReason } from '../../domain/types.ts';
import type { AclWrite, ChunkVector, DocumentRef, DocumentWrite, SearchQuery } from './types.ts';

export function invalidWrite(message: string): PoisonMessageError {
  return new PoisonMessageError('invalid_write', message);
}

export const isVersion = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** `tenant:document`, for messages. */
function where(ref: { tenantId: unknown; documentId: unknown }): string {
  return `${String(ref.tenantId)}:${String(ref.documentId)}`;
}

/** Why the ids cannot form a document key (the domain's id rules), or null. */
export function checkIds(tenantId: unknown, documentId: unknown): string | null {
  if (typeof tenantId !== 'string') return 'tenant id must be a string';
  if (typeof documentId !== 'string') return 'document id must be a string';
  const tenant = invalidIdReason('tenant_id', tenantId);
  if (tenant) return `tenant id ${tenant}`;
  const document = invalidIdReason('document_id', documentId);
  if (document) return `document id ${document}`;
  return null;
}

export function checkPrincipals(principals: unknown): string | null {
  if (!Array.isArray(principals)) return 'acl principals must be an array';
  for (const p of principals) if (typeof p !== 'string') return 'acl principals must be strings';
  return null;
}

/** What a store checks beyond the shared rules; each returns a poison error or null. */
export interface StoreChecks {
  /** A chunk that passed the shared checks, e.g. against the store's id or metadata limits. */
  chunk?(write: DocumentWrite, chunk: ChunkVector, at: string): PoisonMessageError | null;
}

/** Why a document write can never succeed, or null. `dimensions`: the index's. */
export function checkDocumentWrite(
  write: DocumentWrite,
  dimensions: number,
  store: StoreChecks = {},
): PoisonMessageError | null {
  const at = where(write);
  const ids = checkIds(write.tenantId, write.documentId);
  if (ids) return invalidWrite(`${at}: ${ids}`);
  if (!isVersion(write.documentVersion)) return invalidWrite(`${at}: documentVersion must be a non-negative integer`);
  if (!isVersion(write.chunkCount)) return invalidWrite(`${at}: chunkCount must be a non-negative integer`);
  if (write.previousChunkCount !== undefined && !isVersion(write.previousChunkCount)) {
    return invalidWrite(`${at}: previousChunkCount must be a non-negative integer`);
  }
  if (typeof write.title !== 'string') return invalidWrite(`${at}: title must be a string`);
  if (write.metadata === null || typeof write.metadata !== 'object' || Array.isArray(write.metadata)) {
    return invalidWrite(`${at}: metadata must be an object`);
  }
  try {
    JSON.stringify(write.metadata);
  } catch (error) {
    return invalidWrite(`${at}: metadata is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (write.acl !== null) {
    const why = checkPrincipals(write.acl?.principals);
    if (why) return invalidWrite(`${at}: ${why}`);
    if (!isVersion(write.acl.aclVersion)) return invalidWrite(`${at}: aclVersion must be a non-negative integer`);
  }
  if (!Array.isArray(write.chunks)) return invalidWrite(`${at}: chunks must be an array`);
  const seen = new Set<number>();
  for (const chunk of write.chunks) {
    const chunkAt = `${at}#${String(chunk.index)}`;
    if (!Number.isInteger(chunk.index) || chunk.index < 0 || chunk.index >= write.chunkCount) {
      return invalidWrite(`${chunkAt}: chunk index must be an integer in [0, chunkCount=${write.chunkCount})`);
    }
    if (seen.has(chunk.index)) return invalidWrite(`${chunkAt}: chunk index repeated`);
    seen.add(chunk.index);
    if (typeof chunk.content !== 'string' || typeof chunk.contentHash !== 'string') {
      return invalidWrite(`${chunkAt}: content and contentHash must be strings`);
    }
    if (!(chunk.embedding instanceof Float32Array) || chunk.embedding.length !== dimensions) {
      return new PoisonMessageError(
        'invalid_vector',
        `${chunkAt}: embedding has ${chunk.embedding?.length ?? 'no'} dimensions, the index has ${dimensions}`,
      );
    }
    for (const x of chunk.embedding) {
      if (!Number.isFinite(x))
        return new PoisonMessageError('invalid_vector', `${chunkAt}: embedding has a non-finite value`);
    }
    const extra = store.chunk?.(write, chunk, chunkAt);
    if (extra) return extra;
  }
  return null;
}

/** The most chunks an ACL write may name per index (a guard against garbage, not a store limit). */
export const MAX_ACL_CHUNK_COUNT = 1_000_000;

export function checkAclWrite(write: AclWrite): PoisonMessageError | null {
  const at = where(write);
  const ids = checkIds(write.tenantId, write.documentId);
  if (ids) return invalidWrite(`${at}: ${ids}`);
  const why = checkPrincipals(write.principals);
  if (why) return invalidWrite(`${at}: ${why}`);
  if (!isVersion(write.aclVersion)) return invalidWrite(`${at}: aclVersion must be a non-negative integer`);
  const counts = [write.chunkCount, ...Object.values(write.chunkCounts ?? {})];
  if (!counts.every((n) => isVersion(n) && n <= MAX_ACL_CHUNK_COUNT)) {
    return invalidWrite(`${at}: chunk counts must be non-negative integers up to ${MAX_ACL_CHUNK_COUNT}`);
  }
  return null;
}

export function checkDocumentRef(ref: DocumentRef): PoisonMessageError | null {
  const ids = checkIds(ref.tenantId, ref.documentId);
  if (ids) return invalidWrite(`${where(ref)}: ${ids}`);
  if (ref.version !== undefined && !isVersion(ref.version)) {
    return invalidWrite(`${where(ref)}: the delete's version must be a non-negative integer`);
  }
  if (ref.aclVersion !== undefined && !isVersion(ref.aclVersion)) {
    return invalidWrite(`${where(ref)}: the delete's aclVersion must be a non-negative integer`);
  }
  return null;
}

/** The key that tells two items about the same document apart from the rest (waves, call state). */
export const documentKey = (ref: DocumentRef): string => `${ref.tenantId}\u0000${ref.documentId}`;

/**
 * The chunk count of `write` in the index of `modelKey`: each model's index may hold another
 * number of chunks of the same document (other chunker, other version).
 */
export function chunkCountIn(write: AclWrite, modelKey: string): number {
  return write.chunkCounts?.[modelKey] ?? write.chunkCount;
}

/**
 * One ACL write for several models' indexes out of two for the same document and ACL: the chunk
 * counts of both models are kept, so each index is updated by its own count.
 */
export function mergeAclWrites(kept: AclWrite, next: AclWrite): AclWrite {
  return {
    ...kept,
    chunkCount: Math.max(kept.chunkCount, next.chunkCount),
    chunkCounts: { ...kept.chunkCounts, ...next.chunkCounts },
  };
}

/** The most results one search may ask for (Pinecone: topK ≤ 1,000 when metadata is included). */
export const MAX_TOP_K = 1000;

/** Throws a ConfigError for a search no store can answer (the caller's mistake, never retried). */
export function checkSearchQuery(query: SearchQuery): void {
  if (!Number.isInteger(query.topK) || query.topK < 1 || query.topK > MAX_TOP_K) {
    throw new ConfigError(`search: topK must be an integer in [1, ${MAX_TOP_K}], got ${query.topK}`);
  }
  if (!query.tenantId || !query.principal) throw new ConfigError('search: tenant and principal are required');
  if (!(query.vector instanceof Float32Array) || !query.vector.every(Number.isFinite)) {
    throw new ConfigError('search: the query vector must be a Float32Array of finite numbers');
  }
}

/** Throws a ConfigError when the query vector does not fit the model's index. */
export function checkQueryDimensions(query: SearchQuery, dimensions: number): void {
  if (query.vector.length !== dimensions) {
    throw new ConfigError(
      `search: the query vector has ${query.vector.length} dimensions, model ${query.modelKey} has ${dimensions}`,
    );
  }
}
