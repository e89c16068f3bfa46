/**
 * The sink interface. It is shaped by the weakest store we support (Pinecone): no transactions,
 * no conditional writes, per-request limits, namespaces, eventual consistency. So a sink never
 * decides ordering: the ledger (PostgreSQL, services/ledger) decides what to write, under a row
 * lock, and the sink only executes blind, idempotent writes and reports per item.
 */

/** An embedding model's index in a sink (a pgvector table, or a Pinecone index/namespace set). */
export interface IndexSpec {
  /** `<name>.v<version>`, see config `modelKey()`. */
  modelKey: string;
  dimensions: number;
}

export interface ChunkVector {
  index: number;
  content: string;
  contentHash: string;
  embedding: Float32Array;
}

/** The full content of one document version for one model. */
export interface DocumentWrite {
  tenantId: string;
  documentId: string;
  documentVersion: number;
  /** Chunks with index >= chunkCount are removed, so a shrinking document leaves no orphans. */
  chunkCount: number;
  /**
   * The chunk count the ledger held before this write, when known. Sinks that cannot remove
   * "every chunk at or beyond chunkCount" in one statement (Pinecone: deletes by id, listing is
   * eventually consistent) delete ids `chunkCount..previousChunkCount-1`; without it they must
   * assume the most chunks a document can have.
   */
  previousChunkCount?: number;
  contentHash: string;
  title: string;
  /** Allowlisted metadata only. */
  metadata: Record<string, unknown>;
  chunks: ChunkVector[];
  /**
   * The ACL to store with the document, or null to keep the stored ACL (the ledger holds a newer
   * one). Guarantee 3: a content write never lowers the ACL version.
   */
  acl: { principals: string[]; aclVersion: number } | null;
}

export interface AclWrite {
  tenantId: string;
  documentId: string;
  principals: string[];
  aclVersion: number;
  /**
   * The document's chunk count the ledger holds; sinks that keep the ACL per chunk need it to find
   * the chunks. The count in indexes that `chunkCounts` does not name.
   */
  chunkCount: number;
  /**
   * Chunk count per model key, when the call names several indexes: each model chunks the
   * document its own way, so each index may hold another number of chunks (see `chunkCountIn`).
   */
  chunkCounts?: Readonly<Record<string, number>>;
}

export interface DocumentRef {
  tenantId: string;
  documentId: string;
  /**
   * Delete only: the version of the delete. Sinks that fence (pgvector) keep it as a tombstone,
   * so a write of this version or older that arrives later changes nothing. Without it the delete
   * removes what is stored and fences nothing (tools, tests).
   */
  version?: number;
  /** Delete only: the ACL version the ledger holds; an ACL write at or below it after the delete changes nothing. */
  aclVersion?: number;
}

/**
 * Per-item outcome: partial batch failure is normal; only failed items are retried. `fenced`: the
 * sink holds something at least as new (see `fence.ts`), so the item changed nothing and is done.
 */
export type ItemResult = { ok: true; fenced?: FenceSkip } | { ok: false; error: unknown };

/** Why a sink's fence turned an item into a no-op. */
export type FenceSkip = 'stale' | 'tombstoned';

export interface SearchQuery {
  modelKey: string;
  tenantId: string;
  principal: string;
  vector: Float32Array;
  topK: number;
}

export interface SearchHit {
  documentId: string;
  chunkIndex: number;
  score: number;
  content?: string;
}

/** One chunk as stored, for `vecsync inspect vectors --json` and the conformance suite. */
export interface StoredChunk {
  tenant_id: string;
  document_id: string;
  chunk_index: number;
  document_version: number;
  acl_version: number;
  acl: string[];
  model: string;
  content_hash: string;
  /** The stored vector; only when asked for (`InspectOptions.includeEmbeddings`). */
  embedding?: number[];
}

export interface InspectOptions {
  /**
   * Also return each chunk's stored vector (Pinecone: fetch with values). Lets tests and operators
   * check that an ACL change or a replay left the embeddings untouched.
   */
  includeEmbeddings?: boolean;
}

/** Options of `Sink.listDocuments`. */
export interface ListDocumentsOptions {
  /**
   * Only the documents whose bucket (`bucketOf` in domain/transforms/drift.ts: md5 of
   * `tenant:document`, modulo `count`) is one of `ids`: the reconciler's drill-down into the
   * buckets whose checksums differ. A store that can evaluate it filters there (pgvector, in SQL);
   * one that cannot filters before fetching anything per document (Pinecone: before the fetch).
   */
  buckets?: { count: number; ids: readonly number[] };
}

/** What the reconciler needs per stored document. */
export interface StoredDocument {
  documentId: string;
  documentVersion: number;
  aclVersion: number;
  acl: string[];
  chunkIndexes: number[];
}

export interface Sink {
  /** The registry key / config type (`pgvector`, `pinecone`). */
  readonly type: string;
  /** VECSYNC_SINK_NAME: several sinks can be fed from the same topics. */
  readonly name: string;
  /** Creates the model's index if missing; idempotent. */
  ensureIndex(index: IndexSpec): Promise<void>;
  /** Upserts each document's chunks and removes its chunks beyond chunkCount. */
  writeDocuments(index: IndexSpec, writes: DocumentWrite[]): Promise<ItemResult[]>;
  /** Removes every chunk of each document from every given index, and its ACL. */
  deleteDocuments(indexes: IndexSpec[], refs: DocumentRef[]): Promise<ItemResult[]>;
  /** Applies a new ACL to every chunk of each document, without re-embedding. */
  setAcls(indexes: IndexSpec[], writes: AclWrite[]): Promise<ItemResult[]>;
  /** kNN restricted to one tenant and to chunks the principal may see. */
  search(query: SearchQuery): Promise<SearchHit[]>;
  /** Stored chunks of a tenant (optionally one document), ordered by document and chunk. */
  inspect(index: IndexSpec, tenantId: string, documentId?: string, options?: InspectOptions): Promise<StoredChunk[]>;
  /** Every stored document of a tenant (or of some buckets), streamed in document id order (reconciler). */
  listDocuments(index: IndexSpec, tenantId: string, options?: ListDocumentsOptions): AsyncIterable<StoredDocument>;
  /** Tenants that have vectors in this index (reconciler). */
  listTenants(index: IndexSpec): Promise<string[]>;
  /**
   * Removes a model's whole index (a retired blue/green model): the pgvector table, or every
   * record of the Pinecone index (its namespaces; the index itself in name mode). Idempotent.
   */
  dropIndex(index: IndexSpec): Promise<void>;
  /** Throws a RetriableError when the store is unreachable. */
  healthCheck(): Promise<void>;
  close(): Promise<void>;
}

export interface SinkFactoryContext {
  sinkName: string;
}
