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
import { ConfigError, PoisonMessageError, isPoison, isRetriable } from '../../../domain/errors.ts';
import type { Logger } from '../../telemetry/log.ts';
import { withRetry } from '../../../domain/retry.ts';
import { bucketOf } from '../../../domain/transforms/drift.ts';
import { chunkId } from '../../../domain/types.ts';
import { driveItems } from '../driver.ts';
import { fenceWrite, type FenceRow } from '../fence.ts';
import { checkAclWrite, checkDocumentRef, checkQueryDimensions, checkSearchQuery, documentKey } from '../validate.ts';
import type {
  AclWrite,
  DocumentRef,
  DocumentWrite,
  IndexSpec,
  InspectOptions,
  ItemResult,
  ListDocumentsOptions,
  SearchHit,
  SearchQuery,
  Sink,
  StoredChunk,
  StoredDocument,
} from '../types.ts';
import { pineconeConfigFrom, type PineconeConfig, type PineconeOptions, type PineconeRootConfig } from './config.ts';
import {
  aclBytes,
  aclUpdates,
  checkDocumentWrite,
  chunkRecords,
  compareBytes,
  compareChunks,
  decodeRecord,
  decodeTombstone,
  documentPrefix,
  fetchBatches,
  jsonBytes,
  ownChunkIndexes,
  packUpserts,
  shrinkIds,
  sizeRecord,
  slices,
  storedDocument,
  tombstoneId,
  tombstoneRecord,
  tryParseChunkId,
  type SizedRecord,
} from './encoding.ts';
import { classifyPineconeError, pineconeFetch, toSinkError } from './errors.ts';
import { checkPineconeHealth } from './health.ts';
import { mapBounded, Pacer, valuesOrThrow } from './pacing.ts';
import { resolveTarget, type IndexTarget } from './targets.ts';

/** How the per-item driver reads this sink's failures (errors.ts): poison is one item's. */
const PINECONE_ITEM_ERRORS = {
  isItemError: isPoison,
  // A missing index fails every later write the same way; it is thrown, loudly. A refused key
  // (CredentialsError) is retriable: it stops later waves and fails every item, so the consumer
  // pauses instead of dead-lettering them.
  stopsLaterWaves: (error: unknown) => isRetriable(error) || error instanceof ConfigError,
  throwsOn: (error: unknown) => error instanceof ConfigError,
};

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
    return driveItems(writes, async () => {
      const handle = await this.#required(index);
      const limits = {
        dimensions: handle.dimensions,
        maxMetadataBytes: this.#config.maxMetadataBytes,
        maxUpsertBytes: this.#config.maxUpsertBytes,
      };
      // What this call already wrote per document: a later write of the same document in the same
      // call must still remove those chunks, and may need that ACL, before Pinecone shows either.
      const state: CallState = { written: new Map(), acls: new Map() };
      return {
        check: (write) => checkDocumentWrite(write, limits, index.modelKey),
        keyOf: documentKey,
        write: (items) => this.#writeBatch(handle, items, state),
        afterWave: (items, outcome) =>
          outcome.forEach((result, k) => {
            if (!result.ok) return;
            const item = items[k] as DocumentWrite;
            const key = documentKey(item);
            state.written.set(key, Math.max(state.written.get(key) ?? 0, item.chunkCount));
            if (item.acl !== null) state.acls.set(key, item.acl);
          }),
        ...PINECONE_ITEM_ERRORS,
      };
    });
  }

  async deleteDocuments(indexes: IndexSpec[], refs: DocumentRef[]): Promise<ItemResult[]> {
    this.#assertOpen();
    return driveItems(refs, async () => {
      const handles = await this.#indexes(indexes);
      // Deletes are idempotent: repeated documents need no waves.
      return {
        check: checkDocumentRef,
        write: async (items) => {
          for (const handle of handles) {
            // The marker first: a write still in flight re-checks it once it has landed.
            await this.#markTombstones(handle, items);
            await this.#deleteBatch(handle, items);
          }
        },
        ...PINECONE_ITEM_ERRORS,
      };
    });
  }

  /**
   * Per-record `update` of `acl` and `acl_version` on chunks `#0..#n-1` of each document in each
   * index, `n` being that model's chunk count (`chunkCountIn`), at most `aclUpdateConcurrency` in
   * flight and `updatesPerSecond` per namespace. No read, no vector resent, no re-embedding; the
   * records' content and versions stay as they are. An ACL Pinecone cannot hold fails closed.
   */
  async setAcls(indexes: IndexSpec[], writes: AclWrite[]): Promise<ItemResult[]> {
    this.#assertOpen();
    return driveItems(writes, async () => {
      const handles = await this.#indexes(indexes);
      return {
        check: checkAclWrite,
        keyOf: documentKey,
        write: (items) => this.#aclBatch(handles, items),
        ...PINECONE_ITEM_ERRORS,
      };
    });
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    this.#assertOpen();
    checkSearchQuery(query);
    const handle = await this.#handle(query.modelKey, undefined, false);
    if (!handle) throw new ConfigError(`search: the Pinecone sink has no index for model ${query.modelKey}`);
    checkQueryDimensions(query, handle.dimensions);
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
  async *listDocuments(
    index: IndexSpec,
    tenantId: string,
    options: ListDocumentsOptions = {},
  ): AsyncIterable<StoredDocument> {
    this.#assertOpen();
    const handle = await this.#handle(index.modelKey, index.dimensions, false);
    if (!handle) return;
    const buckets = options.buckets;
    const wanted = buckets ? new Set(buckets.ids) : null;
    if (wanted?.size === 0) return;
    const byDocument = new Map<string, string[]>();
    for (const id of await this.#listIds(handle, tenantId, `${tenantId}:`)) {
      const parsed = tryParseChunkId(id);
      if (!parsed || parsed.tenant_id !== tenantId) continue;
      // Ids carry the document, so other buckets are left out before anything is fetched.
      if (wanted && !wanted.has(bucketOf(tenantId, parsed.document_id, buckets!.count))) continue;
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

  /**
   * Upserts the documents' chunks and prunes the ids beyond. A document whose ACL Pinecone cannot
   * hold (record metadata over the limit with it, within it without) fails closed: its chunks are
   * written with an empty ACL at the new ACL version, so nobody finds it rather than the old,
   * wider ACL staying searchable, and the item is reported as poison `acl_too_large`.
   */
  async #writeBatch(handle: IndexHandle, batch: DocumentWrite[], state: CallState): Promise<ItemResult[]> {
    // Fence, before: a write behind a tombstone it does not beat is not sent at all.
    const before = await this.#tombstones(handle, batch);
    const outcome = new Map<DocumentWrite, ItemResult>();
    for (const w of batch) {
      const verdict = fenceWrite(before.get(documentKey(w)), w.documentVersion);
      if (!verdict.apply) outcome.set(w, { ok: true, fenced: verdict.reason });
    }
    const items = batch.filter((w) => !outcome.has(w));
    if (items.length > 0) {
      const results = await this.#upsertDocuments(handle, items, state);
      items.forEach((w, k) => outcome.set(w, results[k] as ItemResult));
      // Fence, after: a delete that came while this write was in flight (its ledger lock lost)
      // left a marker; the write's chunks are removed again, so the delete stays a delete.
      const after = await this.#tombstones(handle, items);
      const overtaken = items.filter((w) => !fenceWrite(after.get(documentKey(w)), w.documentVersion).apply);
      if (overtaken.length > 0) {
        this.#log?.warn(
          { sink: this.name, documents: overtaken.length },
          'pinecone sink: a delete overtook a write in flight; removing the write again',
        );
        await this.#deleteBatch(handle, overtaken);
        for (const w of overtaken) outcome.set(w, { ok: true, fenced: 'tombstoned' });
      }
    }
    return batch.map((w) => outcome.get(w) as ItemResult);
  }

  /** The documents' tombstone markers (none: not deleted, or deleted without a version). */
  async #tombstones(handle: IndexHandle, refs: DocumentRef[]): Promise<Map<string, FenceRow>> {
    const out = new Map<string, FenceRow>();
    const byNamespace = new Map<string, DocumentRef[]>();
    for (const r of refs) push(byNamespace, r.tenantId, [r]);
    for (const [namespace, docs] of byNamespace) {
      const records = await this.#fetch(
        handle,
        namespace,
        docs.map((r) => tombstoneId(r.tenantId, r.documentId)),
      );
      for (const r of docs) {
        const fence = decodeTombstone(records.get(tombstoneId(r.tenantId, r.documentId))?.metadata);
        if (fence) out.set(documentKey(r), fence);
      }
    }
    return out;
  }

  /** Upserts the markers of versioned deletes (never lowering one a later delete left). */
  async #markTombstones(handle: IndexHandle, refs: DocumentRef[]): Promise<void> {
    const versioned = refs.filter((r): r is DocumentRef & { version: number } => r.version !== undefined);
    if (versioned.length === 0) return;
    const existing = await this.#tombstones(handle, versioned);
    const byNamespace = new Map<string, SizedRecord[]>();
    for (const r of versioned) {
      const kept = existing.get(documentKey(r));
      if (kept && kept.version >= r.version) continue;
      push(byNamespace, r.tenantId, [sizeRecord(tombstoneRecord(r, handle.dimensions))]);
    }
    const limits = { maxVectors: this.#config.maxVectorsPerUpsert, maxBytes: this.#config.maxUpsertBytes };
    await this.#all(
      [...byNamespace].flatMap(([namespace, records]) =>
        packUpserts(namespace, records, limits).map(
          (batch) => () =>
            this.#call('tombstone', () =>
              handle.index.upsert({ namespace, records: batch.map((r) => r.record as PineconeRecord<RecordMetadata>) }),
            ),
        ),
      ),
    );
  }

  async #upsertDocuments(handle: IndexHandle, items: DocumentWrite[], state: CallState): Promise<ItemResult[]> {
    const acls = await this.#storedAcls(
      handle,
      items.filter((w) => w.acl === null && !state.acls.has(documentKey(w))),
    );
    const byNamespace = new Map<string, SizedRecord[]>();
    const results: ItemResult[] = items.map(() => ({ ok: true }));
    for (const [k, write] of items.entries()) {
      let acl: Acl = write.acl ??
        state.acls.get(documentKey(write)) ??
        acls.get(documentKey(write)) ?? { principals: [], aclVersion: 0 };
      let records = chunkRecords(write, acl, handle.target.modelKey);
      const largest = Math.max(0, ...records.map((r) => jsonBytes(r.metadata)));
      if (largest > this.#config.maxMetadataBytes) {
        results[k] = {
          ok: false,
          error: aclTooLarge(write, acl.principals.length, largest, this.#config.maxMetadataBytes),
        };
        acl = { principals: [], aclVersion: acl.aclVersion };
        records = chunkRecords(write, acl, handle.target.modelKey);
      }
      const list = byNamespace.get(write.tenantId) ?? [];
      list.push(...records.map(sizeRecord));
      byNamespace.set(write.tenantId, list);
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
    return results;
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

  /**
   * The ACL updates of `writes` in every index. An ACL Pinecone cannot hold (larger than a record's
   * metadata limit on its own, or an update it refuses) fails closed: that document's chunks get
   * an empty ACL at the new ACL version, so a revoke too large to store still revokes, and the
   * item is reported as poison `acl_too_large`.
   */
  async #aclBatch(handles: IndexHandle[], writes: AclWrite[]): Promise<ItemResult[]> {
    const max = this.#config.maxMetadataBytes;
    const refused = new Map<number, unknown>();
    writes.forEach((w, k) => {
      if (aclBytes(w.principals) > max) refused.set(k, undefined);
    });
    const failed = await this.#updateAcls(
      handles,
      writes,
      writes.map((_, k) => k).filter((k) => !refused.has(k)),
      false,
    );
    for (const [k, error] of failed) refused.set(k, error);
    if (refused.size > 0) {
      const stillFailed = await this.#updateAcls(handles, writes, [...refused.keys()], true);
      for (const error of stillFailed.values()) throw error;
    }
    return writes.map((w, k) =>
      refused.has(k)
        ? { ok: false, error: aclTooLarge(w, w.principals.length, aclBytes(w.principals), max, refused.get(k)) }
        : { ok: true },
    );
  }

  /**
   * Sends the ACL updates of `writes[positions]` (`empty`: an empty ACL instead), paced per
   * namespace; returns the positions whose update Pinecone refused as poison. Any other failure
   * (unavailable, rate limited, rejected key) is thrown.
   */
  async #updateAcls(
    handles: IndexHandle[],
    writes: AclWrite[],
    positions: number[],
    empty: boolean,
  ): Promise<Map<number, unknown>> {
    const updates = handles.flatMap((handle) =>
      aclUpdates(
        positions.map((k) => writes[k] as AclWrite),
        handle.target.modelKey,
        empty,
      ).map((u) => ({ ...u, position: positions[u.position] as number, handle })),
    );
    const settled = await mapBounded(
      updates,
      this.#config.aclUpdateConcurrency,
      async (u) => {
        await this.#updates.acquire(`${u.handle.target.name}\u0000${u.namespace}`);
        await this.#call('ACL update', () =>
          u.handle.index.update({ namespace: u.namespace, id: u.id, metadata: u.metadata }),
        );
      },
      fatal,
    );
    const refused = new Map<number, unknown>();
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      if (!isPoison(r.reason)) throw r.reason;
      refused.set((updates[i] as { position: number }).position, r.reason);
    });
    return refused;
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

function push<K, V>(map: Map<K, V[]>, key: K, values: V[]): void {
  if (values.length === 0) return;
  const list = map.get(key);
  if (list) list.push(...values);
  else map.set(key, [...values]);
}

function aclTooLarge(
  write: Pick<AclWrite, 'tenantId' | 'documentId'>,
  principals: number,
  bytes: number,
  max: number,
  cause?: unknown,
): PoisonMessageError {
  return new PoisonMessageError(
    'acl_too_large',
    `${write.tenantId}:${write.documentId}: an ACL of ${principals} principals (${bytes} bytes of record metadata) ` +
      `does not fit Pinecone's ${max} bytes per record; the document's chunks now carry an empty ACL (found by nobody)`,
    cause === undefined ? undefined : { cause },
  );
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
