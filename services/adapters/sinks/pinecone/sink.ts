/**
 * The Pinecone sink: the `Sink` interface over the official SDK (`@pinecone-database/pinecone`).
 * A thin adapter: where each model lives is `targets.ts`, records, limits and validation are
 * `encoding.ts`, error meaning is `errors.ts`, pacing is `pacing.ts`, per-item isolation is
 * `../batch.ts`; this file sends requests and maps answers.
 *
 * Pinecone has no transactions, no conditional writes and is eventually consistent. The ledger
 * (PostgreSQL, under a row lock) decides what to write; this sink executes blind, idempotent
 * writes by id, which Pinecone applies in the order they were acknowledged, so:
 *
 * - a write upserts the chunks `#0..#n-1` and deletes `#n..#previous-1` by id (a shrink needs no
 *   listing, which might not see chunks written a moment ago);
 * - a delete removes `#0..#maxChunks-1` by id, plus whatever `list` shows under the document's
 *   prefix (orphans beyond that);
 * - an ACL change is a per-record `update` of `acl` and `acl_version` on `#0..#n-1`: it never
 *   reads, so it can never write back a stale read, and it never resends vectors (see
 *   docs/pinecone.md for the trade-off against re-upserting fetched vectors).
 */
import { Pinecone, type Index, type PineconeRecord, type RecordMetadata } from '@pinecone-database/pinecone';
import { ConfigError, isPoison, isRetriable } from '../../../domain/errors.ts';
import type { Logger } from '../../telemetry/log.ts';
import { withRetry } from '../../../domain/retry.ts';
import { chunkId } from '../../../domain/types.ts';
import { applyInWaves, writeIsolated } from '../batch.ts';
import type {
  AclWrite,
  DocumentRef,
  DocumentWrite,
  IndexSpec,
  InspectOptions,
  ItemResult,
  SearchHit,
  SearchQuery,
  Sink,
  StoredChunk,
  StoredDocument,
} from '../types.ts';
import { pineconeConfigFrom, type PineconeConfig, type PineconeOptions, type PineconeRootConfig } from './config.ts';
import {
  checkAclWrite,
  checkDocumentRef,
  checkDocumentWrite,
  chunkMetadata,
  compareBytes,
  compareChunks,
  decodeRecord,
  documentKey,
  documentMetadata,
  documentPrefix,
  fetchBatches,
  idRange,
  ownChunkIndexes,
  packUpserts,
  shrinkIds,
  sizeRecord,
  slices,
  storedDocument,
  tryParseChunkId,
  type Metadata,
  type SizedRecord,
} from './encoding.ts';
import { classifyPineconeError, pineconeFetch, toSinkError } from './errors.ts';
import { checkPineconeHealth } from './health.ts';
import { mapBounded, Pacer, valuesOrThrow } from './pacing.ts';
import { resolveTarget, type IndexTarget } from './targets.ts';

/** The most results one search may ask for (Pinecone: topK ≤ 1,000 when metadata is included). */
export const MAX_TOP_K = 1000;

interface IndexHandle {
  target: IndexTarget;
  index: Index;
  dimensions: number;
}

type Acl = { principals: string[]; aclVersion: number };

/** A failure that makes going on pointless (everything else would fail the same way). */
const fatal = (error: unknown) => !isPoison(error);

export class PineconeSink implements Sink {
  readonly type = 'pinecone';
  readonly name: string;
  readonly #config: PineconeConfig;
  readonly #client: Pinecone;
  readonly #log: Logger | undefined;
  readonly #updates: Pacer;
  /** modelKey → the checked index (dimensions known). Failures are not cached. */
  readonly #handles = new Map<string, Promise<IndexHandle | undefined>>();
  #closed = false;

  constructor(config: PineconeConfig, log?: Logger) {
    this.#config = config;
    this.name = config.sinkName;
    this.#log = log;
    this.#updates = new Pacer(config.updatesPerSecond);
    this.#client = new Pinecone({
      apiKey: config.apiKey,
      // Retries are ours (one policy, Retry-After honoured); the SDK's would hide the status.
      maxRetries: 0,
      fetchApi: pineconeFetch(config.requestTimeoutMs),
      ...(config.controllerHostUrl !== undefined ? { controllerHostUrl: config.controllerHostUrl } : {}),
    });
  }

  async ensureIndex(index: IndexSpec): Promise<void> {
    this.#assertOpen();
    await this.#handle(index.modelKey, index.dimensions, true);
  }

  async writeDocuments(index: IndexSpec, writes: DocumentWrite[]): Promise<ItemResult[]> {
    this.#assertOpen();
    const results = new Array<ItemResult>(writes.length);
    let handle: IndexHandle;
    try {
      handle = await this.#required(index);
    } catch (error) {
      if (isRetriable(error)) return writes.map(() => ({ ok: false, error }));
      throw error;
    }
    const limits = {
      dimensions: handle.dimensions,
      maxMetadataBytes: this.#config.maxMetadataBytes,
      maxUpsertBytes: this.#config.maxUpsertBytes,
    };
    const valid: number[] = [];
    writes.forEach((write, i) => {
      const bad = checkDocumentWrite(write, limits, index.modelKey);
      if (bad) results[i] = { ok: false, error: bad };
      else valid.push(i);
    });
    // What this call already wrote per document: a later write of the same document in the same
    // call must still remove those chunks, and may need that ACL, before Pinecone shows either.
    const state: CallState = { written: new Map(), acls: new Map() };
    const run = (items: DocumentWrite[]) => this.#writeBatch(handle, items, state);
    await applyInWaves(
      valid,
      (i) => documentKey(writes[i] as DocumentWrite),
      results,
      async (positions) => {
        const items = positions.map((i) => writes[i] as DocumentWrite);
        const outcome = await writeIsolated(items, {
          runBatch: run,
          runOne: (item) => run([item]),
          isItemError: isPoison,
          toItemError: (error) => error,
        });
        outcome.forEach((result, k) => {
          if (!result.ok) return;
          const item = items[k] as DocumentWrite;
          const key = documentKey(item);
          state.written.set(key, Math.max(state.written.get(key) ?? 0, item.chunkCount));
          if (item.acl !== null) state.acls.set(key, item.acl);
        });
        return outcome;
      },
      // A rejected key or missing index fails every later write the same way.
      (error) => isRetriable(error) || error instanceof ConfigError,
    );
    return throwIfConfig(results);
  }

  async deleteDocuments(indexes: IndexSpec[], refs: DocumentRef[]): Promise<ItemResult[]> {
    this.#assertOpen();
    const results = new Array<ItemResult>(refs.length);
    let handles: IndexHandle[];
    try {
      handles = await this.#indexes(indexes);
    } catch (error) {
      if (isRetriable(error)) return refs.map(() => ({ ok: false, error }));
      throw error;
    }
    const valid: number[] = [];
    refs.forEach((ref, i) => {
      const bad = checkDocumentRef(ref);
      if (bad) results[i] = { ok: false, error: bad };
      else valid.push(i);
    });
    const items = valid.map((i) => refs[i] as DocumentRef);
    // Deletes are idempotent: repeated documents need no waves.
    for (const handle of handles) {
      const outcome = await writeIsolated(items, {
        runBatch: (batch) => this.#deleteBatch(handle, batch),
        runOne: (item) => this.#deleteBatch(handle, [item]),
        isItemError: isPoison,
        toItemError: (error) => error,
      });
      outcome.forEach((result, k) => {
        const i = valid[k] as number;
        if (results[i] === undefined || (results[i].ok && !result.ok)) results[i] = result;
      });
    }
    for (const i of valid) results[i] ??= { ok: true };
    return throwIfConfig(results);
  }

  /**
   * Per-record `update` of `acl` and `acl_version` on chunks `#0..#chunkCount-1` of each document,
   * at most `aclUpdateConcurrency` in flight and `updatesPerSecond` per namespace. No read, no
   * vector resent, no re-embedding; the records' content and versions stay as they are.
   */
  async setAcls(indexes: IndexSpec[], writes: AclWrite[]): Promise<ItemResult[]> {
    this.#assertOpen();
    const results = new Array<ItemResult>(writes.length);
    let handles: IndexHandle[];
    try {
      handles = await this.#indexes(indexes);
    } catch (error) {
      if (isRetriable(error)) return writes.map(() => ({ ok: false, error }));
      throw error;
    }
    const valid: number[] = [];
    writes.forEach((write, i) => {
      const bad = checkAclWrite(write, this.#config.maxChunks);
      if (bad) results[i] = { ok: false, error: bad };
      else valid.push(i);
    });
    await applyInWaves(
      valid,
      (i) => documentKey(writes[i] as AclWrite),
      results,
      async (positions) => {
        const items = positions.map((i) => writes[i] as AclWrite);
        const merged: ItemResult[] = items.map(() => ({ ok: true }));
        for (const handle of handles) {
          const outcome = await writeIsolated(items, {
            runBatch: (batch) => this.#aclBatch(handle, batch),
            runOne: (item) => this.#aclBatch(handle, [item]),
            isItemError: isPoison,
            toItemError: (error) => error,
          });
          outcome.forEach((result, k) => {
            if (merged[k]!.ok && !result.ok) merged[k] = result;
          });
          if (outcome.some((r) => !r.ok && isRetriable(r.error))) break;
        }
        return merged;
      },
      // A rejected key or missing index fails every later write the same way.
      (error) => isRetriable(error) || error instanceof ConfigError,
    );
    return throwIfConfig(results);
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    this.#assertOpen();
    if (!Number.isInteger(query.topK) || query.topK < 1 || query.topK > MAX_TOP_K) {
      throw new ConfigError(`search: topK must be an integer in [1, ${MAX_TOP_K}], got ${query.topK}`);
    }
    if (!query.tenantId || !query.principal) throw new ConfigError('search: tenant and principal are required');
    if (!(query.vector instanceof Float32Array) || !query.vector.every(Number.isFinite)) {
      throw new ConfigError('search: the query vector must be a Float32Array of finite numbers');
    }
    const handle = await this.#handle(query.modelKey, undefined, false);
    if (!handle) throw new ConfigError(`search: the Pinecone sink has no index for model ${query.modelKey}`);
    if (query.vector.length !== handle.dimensions) {
      throw new ConfigError(
        `search: the query vector has ${query.vector.length} dimensions, model ${query.modelKey} has ${handle.dimensions}`,
      );
    }
    const response = await this.#call('search', () =>
      handle.index.query({
        namespace: query.tenantId,
        vector: Array.from(query.vector),
        topK: query.topK,
        // Guarantee 4: one tenant (the namespace) and only what the principal may see.
        filter: { acl: { $in: [query.principal] } },
        includeMetadata: true,
        includeValues: false,
      }),
    );
    const hits: SearchHit[] = [];
    for (const match of response.matches) {
      const chunk = decodeRecord(query.tenantId, match.id, match.metadata, undefined, false);
      if (!chunk || !chunk.acl.includes(query.principal)) continue;
      hits.push({ documentId: chunk.document_id, chunkIndex: chunk.chunk_index, score: match.score ?? 0 });
    }
    return hits.sort(
      (a, b) => b.score - a.score || compareBytes(a.documentId, b.documentId) || a.chunkIndex - b.chunkIndex,
    );
  }

  async inspect(
    index: IndexSpec,
    tenantId: string,
    documentId?: string,
    options: InspectOptions = {},
  ): Promise<StoredChunk[]> {
    this.#assertOpen();
    const handle = await this.#handle(index.modelKey, index.dimensions, false);
    if (!handle) return [];
    let ids = await this.#listIds(
      handle,
      tenantId,
      documentId === undefined ? `${tenantId}:` : documentPrefix(tenantId, documentId),
    );
    if (documentId !== undefined) {
      ids = ownChunkIndexes(tenantId, documentId, ids).map((i) => chunkId(tenantId, documentId, i));
    }
    const records = await this.#fetch(handle, tenantId, ids);
    const withValues = options.includeEmbeddings === true;
    const chunks: StoredChunk[] = [];
    for (const id of ids) {
      const record = records.get(id);
      if (!record) continue; // listed but not fetchable yet (eventual consistency) or just deleted
      const chunk = decodeRecord(tenantId, id, record.metadata, record.values, withValues);
      if (chunk) chunks.push(chunk);
    }
    return chunks.sort(compareChunks);
  }

  /**
   * Lists every id of the tenant's namespace (paginated), then fetches the documents' chunks in
   * document id order, a fetch batch at a time. Memory: the tenant's ids, not its vectors.
   */
  async *listDocuments(index: IndexSpec, tenantId: string): AsyncIterable<StoredDocument> {
    this.#assertOpen();
    const handle = await this.#handle(index.modelKey, index.dimensions, false);
    if (!handle) return;
    const byDocument = new Map<string, string[]>();
    for (const id of await this.#listIds(handle, tenantId, `${tenantId}:`)) {
      const parsed = tryParseChunkId(id);
      if (!parsed || parsed.tenant_id !== tenantId) continue;
      const ids = byDocument.get(parsed.document_id);
      if (ids) ids.push(id);
      else byDocument.set(parsed.document_id, [id]);
    }
    const documents = [...byDocument.keys()].sort(compareBytes);
    let group: string[] = [];
    let groupIds = 0;
    for (const [k, documentId] of documents.entries()) {
      group.push(documentId);
      groupIds += byDocument.get(documentId)?.length ?? 0;
      if (groupIds >= this.#config.maxIdsPerFetch || k === documents.length - 1) {
        yield* await this.#storedDocuments(handle, tenantId, group, byDocument);
        group = [];
        groupIds = 0;
      }
    }
  }

  async #storedDocuments(
    handle: IndexHandle,
    tenantId: string,
    documentIds: string[],
    idsOf: Map<string, string[]>,
  ): Promise<StoredDocument[]> {
    const records = await this.#fetch(
      handle,
      tenantId,
      documentIds.flatMap((d) => idsOf.get(d) ?? []),
    );
    const out: StoredDocument[] = [];
    for (const documentId of documentIds) {
      const chunks: StoredChunk[] = [];
      for (const id of idsOf.get(documentId) ?? []) {
        const record = records.get(id);
        const chunk = record && decodeRecord(tenantId, id, record.metadata, undefined, false);
        if (chunk) chunks.push(chunk);
      }
      // Listed but not fetchable (deleted a moment ago): not stored any more.
      if (chunks.length > 0) out.push(storedDocument(chunks));
    }
    return out;
  }

  async listTenants(index: IndexSpec): Promise<string[]> {
    this.#assertOpen();
    const handle = await this.#handle(index.modelKey, index.dimensions, false);
    if (!handle) return [];
    const stats = await this.#call('list tenants', () => handle.index.describeIndexStats());
    return Object.entries(stats.namespaces ?? {})
      .filter(([, summary]) => (summary.recordCount ?? 0) > 0)
      .map(([namespace]) => namespace)
      .sort(compareBytes);
  }

  async dropIndex(index: IndexSpec): Promise<void> {
    this.#assertOpen();
    const handle = await this.#handle(index.modelKey, undefined, false);
    if (!handle) return;
    if (handle.target.host === undefined) {
      await this.#call('delete index', () => this.#client.deleteIndex(handle.target.name));
    } else {
      // Host mode never calls the control plane: empty every namespace instead.
      const stats = await this.#call('describe index stats', () => handle.index.describeIndexStats());
      for (const namespace of Object.keys(stats.namespaces ?? {})) {
        await this.#call('delete all', () => handle.index.deleteAll({ namespace }));
      }
    }
    this.#handles.delete(index.modelKey);
  }

  async healthCheck(): Promise<void> {
    this.#assertOpen();
    const target = resolveTarget(this.#config.targets, this.#config.targets.activeModelKey);
    await checkPineconeHealth(this.#client, target, (what, op) => this.#call(what, op));
  }

  async close(): Promise<void> {
    // Nothing to release: requests go through the process-wide fetch connection pool.
    this.#closed = true;
  }

  // ---- writes ----------------------------------------------------------------------------------

  async #writeBatch(handle: IndexHandle, items: DocumentWrite[], state: CallState): Promise<void> {
    const acls = await this.#storedAcls(
      handle,
      items.filter((w) => w.acl === null && !state.acls.has(documentKey(w))),
    );
    const byNamespace = new Map<string, SizedRecord[]>();
    for (const write of items) {
      const acl: Acl = write.acl ??
        state.acls.get(documentKey(write)) ??
        acls.get(documentKey(write)) ?? { principals: [], aclVersion: 0 };
      const base = documentMetadata(write.metadata);
      const records = byNamespace.get(write.tenantId) ?? [];
      for (const chunk of write.chunks) {
        records.push(
          sizeRecord({
            id: chunkId(write.tenantId, write.documentId, chunk.index),
            values: Array.from(chunk.embedding),
            metadata: chunkMetadata(base, {
              documentId: write.documentId,
              chunkIndex: chunk.index,
              documentVersion: write.documentVersion,
              acl: acl.principals,
              aclVersion: acl.aclVersion,
              modelKey: handle.target.modelKey,
              contentHash: chunk.contentHash,
            }),
          }),
        );
      }
      byNamespace.set(write.tenantId, records);
    }
    const limits = { maxVectors: this.#config.maxVectorsPerUpsert, maxBytes: this.#config.maxUpsertBytes };
    const upserts = [...byNamespace].flatMap(([namespace, records]) =>
      packUpserts(namespace, records, limits).map(
        (batch) => () =>
          this.#call('document write', () =>
            handle.index.upsert({
              namespace,
              records: batch.map((r) => r.record as PineconeRecord<RecordMetadata>),
            }),
          ),
      ),
    );
    // Shrink: ids #chunkCount.. by id. They never overlap the upserted #0..#chunkCount-1, so both
    // go out together (one round of requests, not two).
    await this.#shrinkAlong(
      handle,
      upserts,
      items.map((write) => ({
        write,
        writtenEarlier: state.written.get(documentKey(write)) ?? 0,
        list: write.previousChunkCount === undefined,
      })),
      'document write (shrink)',
    );
  }

  async #deleteBatch(handle: IndexHandle, refs: DocumentRef[]): Promise<void> {
    await this.#shrinkAlong(
      handle,
      [],
      refs.map((ref) => ({
        write: { tenantId: ref.tenantId, documentId: ref.documentId, chunkCount: 0 },
        writtenEarlier: 0,
        list: true,
      })),
      'document delete',
    );
  }

  /**
   * Runs `tasks` together with the deletes of every document's ids beyond its chunk count (by id,
   * see `shrinkIds`) and, where asked, a `list` of its prefix; then deletes the listed orphans
   * beyond that range (usually none).
   */
  async #shrinkAlong(
    handle: IndexHandle,
    tasks: (() => Promise<unknown>)[],
    documents: {
      write: Pick<DocumentWrite, 'tenantId' | 'documentId' | 'chunkCount' | 'previousChunkCount'>;
      writtenEarlier: number;
      list: boolean;
    }[],
    what: string,
  ): Promise<void> {
    const ranges = new Map<string, string[]>();
    const listed = new Map<string, number[]>();
    for (const { write, writtenEarlier } of documents) {
      push(ranges, write.tenantId, shrinkIds(write, this.#config.maxChunks, writtenEarlier));
    }
    await this.#all([
      ...tasks,
      ...this.#deletes(handle, ranges, what),
      ...documents
        .filter((d) => d.list)
        .map(({ write }) => async () => {
          const ids = await this.#listIds(handle, write.tenantId, documentPrefix(write.tenantId, write.documentId));
          listed.set(documentKey(write), ownChunkIndexes(write.tenantId, write.documentId, ids));
        }),
    ]);
    const orphans = new Map<string, string[]>();
    for (const { write, writtenEarlier, list } of documents) {
      if (!list) continue;
      const range = shrinkIds(write, this.#config.maxChunks, writtenEarlier).length;
      const all = shrinkIds(write, this.#config.maxChunks, writtenEarlier, listed.get(documentKey(write)));
      if (all.length > range) push(orphans, write.tenantId, all.slice(range));
    }
    await this.#all(this.#deletes(handle, orphans, what));
  }

  async #aclBatch(handle: IndexHandle, writes: AclWrite[]): Promise<void> {
    const updates = writes.flatMap((w) =>
      idRange(w.tenantId, w.documentId, 0, w.chunkCount).map((id) => ({
        namespace: w.tenantId,
        id,
        metadata: { acl: [...w.principals], acl_version: w.aclVersion } satisfies Metadata,
      })),
    );
    const pace = `${handle.target.name}\u0000`;
    valuesOrThrow(
      await mapBounded(
        updates,
        this.#config.aclUpdateConcurrency,
        async (u) => {
          await this.#updates.acquire(pace + u.namespace);
          await this.#call('ACL update', () =>
            handle.index.update({ namespace: u.namespace, id: u.id, metadata: u.metadata }),
          );
        },
        fatal,
      ),
    );
  }

  /** Delete requests of at most `maxIdsPerDelete` ids each, per namespace. */
  #deletes(handle: IndexHandle, byNamespace: Map<string, string[]>, what: string): (() => Promise<unknown>)[] {
    return [...byNamespace].flatMap(([namespace, ids]) =>
      slices([...new Set(ids)], this.#config.maxIdsPerDelete).map(
        (batch) => () => this.#call(what, () => handle.index.deleteMany({ namespace, ids: batch })),
      ),
    );
  }

  /** Runs requests, at most `concurrency` in flight; throws the first failure. */
  async #all(tasks: (() => Promise<unknown>)[]): Promise<void> {
    valuesOrThrow(await mapBounded(tasks, this.#config.concurrency, (task) => task(), fatal));
  }

  /** The stored ACL of documents written with `acl: null` (from chunk #0; none stored: empty, version 0). */
  async #storedAcls(handle: IndexHandle, writes: DocumentWrite[]): Promise<Map<string, Acl>> {
    const out = new Map<string, Acl>();
    const byNamespace = new Map<string, DocumentWrite[]>();
    for (const w of writes) byNamespace.set(w.tenantId, [...(byNamespace.get(w.tenantId) ?? []), w]);
    for (const [namespace, docs] of byNamespace) {
      const records = await this.#fetch(
        handle,
        namespace,
        docs.map((w) => chunkId(w.tenantId, w.documentId, 0)),
      );
      for (const w of docs) {
        const record = records.get(chunkId(w.tenantId, w.documentId, 0));
        const stored = record && decodeRecord(namespace, record.id, record.metadata, undefined, false);
        if (stored) out.set(documentKey(w), { principals: stored.acl, aclVersion: stored.acl_version });
      }
    }
    return out;
  }

  // ---- reads -----------------------------------------------------------------------------------

  async #listIds(handle: IndexHandle, namespace: string, prefix: string): Promise<string[]> {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call('list', () =>
        handle.index.listPaginated({
          namespace,
          prefix,
          limit: this.#config.listPageSize,
          ...(token !== undefined ? { paginationToken: token } : {}),
        }),
      );
      for (const v of page.vectors ?? []) if (v.id !== undefined) ids.push(v.id);
      token = page.pagination?.next || undefined;
    } while (token !== undefined);
    return ids;
  }

  async #fetch(handle: IndexHandle, namespace: string, ids: string[]): Promise<Map<string, PineconeRecord>> {
    const batches = fetchBatches(ids, this.#config.maxIdsPerFetch, this.#config.maxFetchUrlChars);
    const pages = valuesOrThrow(
      await mapBounded(
        batches,
        this.#config.concurrency,
        (batch) => this.#call('fetch', () => handle.index.fetch({ namespace, ids: batch })),
        fatal,
      ),
    );
    const out = new Map<string, PineconeRecord>();
    for (const page of pages) for (const [id, record] of Object.entries(page.records)) out.set(id, record);
    return out;
  }

  // ---- plumbing --------------------------------------------------------------------------------

  /** One request with the sink's retries; failures come out as sink errors (errors.ts). */
  #call<T>(what: string, op: () => Promise<T>): Promise<T> {
    return withRetry(
      async () => {
        try {
          return await op();
        } catch (error) {
          throw toSinkError(error, what);
        }
      },
      {
        maxAttempts: this.#config.retryMaxAttempts,
        initialMs: this.#config.retryInitialMs,
        maxMs: this.#config.retryMaxMs,
        onRetry: ({ error, attempt }) =>
          this.#log?.debug({ sink: this.name, what, attempt, err: error.message }, 'pinecone request retried'),
      },
    );
  }

  async #indexes(indexes: IndexSpec[]): Promise<IndexHandle[]> {
    const unique = [...new Map(indexes.map((index) => [index.modelKey, index])).values()];
    return Promise.all(unique.map((index) => this.#required(index)));
  }

  /** The index of a model the caller writes to: created when missing (name mode). */
  async #required(index: IndexSpec): Promise<IndexHandle> {
    const handle = await this.#handle(index.modelKey, index.dimensions, true);
    if (!handle) throw new ConfigError(`pinecone sink: no index for model ${index.modelKey}`);
    return handle;
  }

  /**
   * The model's index, opened once per process: its dimensions (and, through the control plane,
   * its metric) must match. `create`: a missing index is created (name mode only); otherwise a
   * missing index is undefined (reads of a model never written return nothing).
   */
  async #handle(modelKey: string, dimensions: number | undefined, create: boolean): Promise<IndexHandle | undefined> {
    let pending = this.#handles.get(modelKey);
    if (!pending) {
      pending = this.#openIndex(modelKey, create ? dimensions : undefined).then(
        (handle) => {
          // "Missing" is never cached: the writer may create the index any moment.
          if (!handle) this.#handles.delete(modelKey);
          return handle;
        },
        (error: unknown) => {
          this.#handles.delete(modelKey);
          throw error;
        },
      );
      this.#handles.set(modelKey, pending);
    }
    const handle = await pending;
    // A read found the index missing while this call wants it created: open it again, creating.
    if (!handle && create && dimensions !== undefined) return this.#handle(modelKey, dimensions, create);
    if (handle && dimensions !== undefined && handle.dimensions !== dimensions) {
      throw new ConfigError(
        `pinecone sink: index ${handle.target.name} has ${handle.dimensions} dimensions but model ${modelKey} ` +
          `has ${dimensions}; a model with other dimensions needs an index of its own`,
      );
    }
    return handle;
  }

  async #openIndex(modelKey: string, createWith: number | undefined): Promise<IndexHandle | undefined> {
    const target = resolveTarget(this.#config.targets, modelKey);
    if (target.host !== undefined) {
      // Host mode: the data plane only. describe_index_stats gives the index's dimension.
      const index = this.#client.index({ name: target.name, host: target.host });
      const stats = await this.#call('describe index stats', () => index.describeIndexStats());
      const dimensions = stats.dimension ?? createWith;
      if (dimensions === undefined || dimensions < 1) {
        throw new ConfigError(`pinecone sink: index ${target.name} at ${target.host} reports no dimension`);
      }
      return { target, index, dimensions };
    }
    let model;
    try {
      model = await this.#call('describe index', () => this.#client.describeIndex(target.name));
    } catch (error) {
      if (classifyPineconeError(error) !== 'not_found') throw error;
      if (createWith === undefined) return undefined;
      this.#log?.info({ sink: this.name, index: target.name, dimensions: createWith }, 'creating Pinecone index');
      await this.#call('create index', () =>
        this.#client.createIndex({
          name: target.name,
          dimension: createWith,
          metric: 'cosine',
          spec: { serverless: { cloud: this.#config.cloud, region: this.#config.region } },
          waitUntilReady: true,
          suppressConflicts: true,
        }),
      );
      model = await this.#call('describe index', () => this.#client.describeIndex(target.name));
    }
    if (model.metric !== 'cosine') {
      throw new ConfigError(`pinecone sink: index ${target.name} uses metric ${model.metric}; vecsync needs cosine`);
    }
    if (model.dimension === undefined || !model.host) {
      throw new ConfigError(`pinecone sink: index ${target.name} has no dimension or host (not a dense index?)`);
    }
    return {
      target,
      index: this.#client.index({ name: target.name, host: model.host }),
      dimensions: model.dimension,
    };
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`pinecone sink ${this.name} is closed`);
  }
}

interface CallState {
  /** Highest chunk count written per document in this call. */
  written: Map<string, number>;
  /** ACL written per document in this call. */
  acls: Map<string, Acl>;
}

/** A wrong key or host fails every item the same way: report it once, loudly. */
function push<K, V>(map: Map<K, V[]>, key: K, values: V[]): void {
  if (values.length === 0) return;
  const list = map.get(key);
  if (list) list.push(...values);
  else map.set(key, [...values]);
}

function throwIfConfig(results: ItemResult[]): ItemResult[] {
  for (const r of results) if (!r.ok && r.error instanceof ConfigError) throw r.error;
  return results;
}

export interface PineconeSinkOptions {
  log?: Logger;
  /** Options beyond the root configuration (tests, tools); validated like the rest. */
  overrides?: Partial<PineconeOptions>;
}

/** The registry's factory: `VECSYNC_SINK=pinecone`. */
export function createPineconeSink(root: PineconeRootConfig, options: PineconeSinkOptions = {}): Sink {
  return new PineconeSink(pineconeConfigFrom(root, options.overrides), options.log);
}
