/**
 * Domain types shared by every component: document keys, chunk ids, outbox events, the
 * state-topic payload and the chunk record that travels from the embedder to the writer.
 *
 * Field names are snake_case where the value crosses a process boundary (Kafka payloads,
 * Avro records, JSON outputs), so the TypeScript shape and the wire shape are the same thing.
 */

/** A JSON value, as carried by `metadata`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

// ---------------------------------------------------------------------------------------------
// Document keys and chunk ids
// ---------------------------------------------------------------------------------------------

/**
 * Separators of the composite ids. A document key is split at its first `:` and a chunk id at its
 * last `#`, so only a tenant id must be free of `:` (the source database enforces the same rule);
 * a document id may contain both.
 */
export const KEY_SEPARATOR = ':';
export const CHUNK_SEPARATOR = '#';

/**
 * Longest tenant or document id, in UTF-8 bytes. Two of them plus separators and a chunk index
 * stay below Pinecone's 512-byte vector id limit.
 */
export const MAX_ID_BYTES = 200;

// Control characters (\p{Cc}: C0, DEL, C1) are refused too: they never belong in an id, and in
// logs, CLI arguments and sink ids they cause silent mismatches.
const CONTROL = /\p{Cc}/u;

/** Why an id is unusable as a `kind`, or undefined when it is fine. */
export function invalidIdReason(kind: 'tenant_id' | 'document_id', id: string): string | undefined {
  if (id.length === 0) return 'is empty';
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) return `is longer than ${MAX_ID_BYTES} bytes`;
  if (CONTROL.test(id)) return 'contains a control character';
  if (kind === 'tenant_id' && id.includes(KEY_SEPARATOR)) return `contains "${KEY_SEPARATOR}"`;
  return undefined;
}

/** Thrown for ids that cannot form a document key; decoders turn it into a PoisonMessageError. */
export class InvalidKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidKeyError';
  }
}

function assertId(kind: 'tenant_id' | 'document_id', id: string): void {
  const reason = invalidIdReason(kind, id);
  if (reason !== undefined) throw new InvalidKeyError(`${kind} ${JSON.stringify(id)} ${reason}`);
}

/** `tenant_id:document_id`: the Kafka key of every message about a document. */
export type DocumentKey = `${string}:${string}`;

/** Builds the document key; throws InvalidKeyError for ids with bad characters. */
export function documentKey(tenantId: string, documentId: string): DocumentKey {
  assertId('tenant_id', tenantId);
  assertId('document_id', documentId);
  return `${tenantId}${KEY_SEPARATOR}${documentId}`;
}

/** Splits a document key back into its ids; throws InvalidKeyError when it is not one. */
export function parseDocumentKey(key: string): { tenant_id: string; document_id: string } {
  const at = key.indexOf(KEY_SEPARATOR);
  if (at < 0) throw new InvalidKeyError(`document key ${JSON.stringify(key)} has no "${KEY_SEPARATOR}"`);
  const tenant_id = key.slice(0, at);
  const document_id = key.slice(at + 1);
  assertId('tenant_id', tenant_id);
  assertId('document_id', document_id);
  return { tenant_id, document_id };
}

/** `tenant_id:document_id#chunk_index`: stable per chunk, the vector id in every sink. */
export function chunkId(tenantId: string, documentId: string, chunkIndex: number): string {
  if (!Number.isSafeInteger(chunkIndex) || chunkIndex < 0) {
    throw new InvalidKeyError(`chunk index ${chunkIndex} is not a non-negative integer`);
  }
  return `${documentKey(tenantId, documentId)}${CHUNK_SEPARATOR}${chunkIndex}`;
}

/** Splits a chunk id back into its parts; throws InvalidKeyError when it is not one. */
export function parseChunkId(id: string): { tenant_id: string; document_id: string; chunk_index: number } {
  const at = id.lastIndexOf(CHUNK_SEPARATOR);
  const index = id.slice(at + 1);
  if (at < 0 || !/^(0|[1-9][0-9]{0,8})$/.test(index)) {
    throw new InvalidKeyError(`chunk id ${JSON.stringify(id)} does not end in "${CHUNK_SEPARATOR}<index>"`);
  }
  return { ...parseDocumentKey(id.slice(0, at)), chunk_index: Number(index) };
}

/** `<chunk id>:<document_version>`: the same chunk at the same version is written once. */
export function idempotencyKey(chunk: string, documentVersion: number): string {
  return `${chunk}${KEY_SEPARATOR}${documentVersion}`;
}

// ---------------------------------------------------------------------------------------------
// Outbox events (payloads of vecsync.outbox.<lane>, see docs/architecture.md)
// ---------------------------------------------------------------------------------------------

export const Operation = { upsert: 'upsert', delete: 'delete', acl: 'acl' } as const;
export type Operation = (typeof Operation)[keyof typeof Operation];
export const OPERATIONS: readonly Operation[] = Object.values(Operation);

export const DocumentStatus = { active: 'active', archived: 'archived', deleted: 'deleted' } as const;
export type DocumentStatus = (typeof DocumentStatus)[keyof typeof DocumentStatus];

/** Why a document stopped being searchable. */
export const DeleteReason = { hardDelete: 'hard_delete', deleted: 'deleted', archived: 'archived' } as const;
export type DeleteReason = (typeof DeleteReason)[keyof typeof DeleteReason];

interface EventBase {
  tenant_id: string;
  document_id: string;
  /** Content version of the document when the event was written (rises on every content change). */
  version: number;
  /** ACL version of the document when the event was written (rises on every ACL change). */
  acl_version: number;
  /** When the outbox row was written (ISO-8601, as PostgreSQL renders timestamptz). */
  created_at: string;
}

/** New content for one embedding model. `status` is always `active`: other statuses are deletes. */
export interface UpsertEvent extends EventBase {
  op: typeof Operation.upsert;
  /** Principals allowed to see the document, normalized (sorted, unique). */
  acl: string[];
  title: string | null;
  body: string;
  language: string | null;
  status: typeof DocumentStatus.active;
  /** Allowlisted metadata only; `restricted` never leaves PostgreSQL. */
  metadata: { [key: string]: JsonValue };
  model: { name: string; version: number };
  /** The operator's importance rule (`vecsync.document_importance`), when above 0. */
  importance?: number | undefined;
}

/** The document is no longer searchable; its chunks leave every model's index. */
export interface DeleteEvent extends EventBase {
  op: typeof Operation.delete;
  reason: DeleteReason;
}

/** The full current ACL after a permission change; applied without re-embedding. */
export interface AclEvent extends EventBase {
  op: typeof Operation.acl;
  acl: string[];
}

export type OutboxEvent = UpsertEvent | DeleteEvent | AclEvent;

// ---------------------------------------------------------------------------------------------
// State topic (vecsync.state.documents, compacted, keyed by document key)
// ---------------------------------------------------------------------------------------------

/**
 * Latest state of one document, as the source sees it; the reconciler's expected state. The
 * document is searchable iff `status` is `active` and `deleted` is false.
 */
export interface DocumentState {
  tenant_id: string;
  document_id: string;
  version: number;
  acl_version: number;
  status: DocumentStatus;
  acl: string[];
  /** `documentContentHash(title, body)` (sha256 hex), or null after a hard delete. */
  content_hash: string | null;
  /** true only after a hard delete (then `status` is `deleted` and `acl` is empty). */
  deleted: boolean;
  updated_at: string;
}

// ---------------------------------------------------------------------------------------------
// Chunk records (vecsync.chunks.<model key>, Avro, see schemas/document-chunks.avsc)
// ---------------------------------------------------------------------------------------------

/** One embedded chunk of a document. */
export interface EmbeddedChunk {
  chunk_index: number;
  content: string;
  /** sha256 hex of `content`; the embedding cache key together with the model key. */
  content_hash: string;
  embedding: Float32Array | number[];
}

/**
 * Every chunk of one document version for one model: the unit the writer applies atomically
 * (replacing the document's previous chunks). A document with an empty body has zero chunks,
 * which the writer applies as "remove all chunks".
 */
export interface DocumentChunks {
  tenant_id: string;
  document_id: string;
  document_version: number;
  acl_version: number;
  /** ACL carried by the upsert; the writer writes the ledger's ACL when that one is newer. */
  acl: string[];
  chunk_count: number;
  /** `<model name>.v<version>`, e.g. `hashing-384.v1`. */
  model_key: string;
  title: string | null;
  /** Allowlisted metadata (a JSON object). */
  metadata: { [key: string]: JsonValue };
  /** `documentContentHash(title, body)` of the whole document. */
  content_hash: string;
  /** `created_at` of the outbox event, for end-to-end latency. */
  created_at: string;
  /** Outbox row id (header `outbox_id`) so the writer can mark it processed; null when unknown. */
  outbox_id: number | null;
  chunks: EmbeddedChunk[];
}

/** The model key used in topic names, ledger rows and sink index names (`<name>.v<version>`). */
export function modelKey(name: string, version: number): string {
  return `${name}.v${version}`;
}
