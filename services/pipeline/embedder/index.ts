/**
 * The embedder: content upserts on the live and bulk lanes → chunk records on
 * vecsync.chunks.<model>. Two consumers (one per lane, each its own group) share one embedding
 * provider through a priority gate, so live documents overtake a running backfill.
 */
import { randomUUID } from 'node:crypto';
import { createChunkCodec } from '../../adapters/kafka/chunk-codec.ts';
import { modelKey } from '../../domain/types.ts';
import { PoisonMessageError } from '../../domain/errors.ts';
import type { DocumentChunks, UpsertEvent } from '../../domain/types.ts';
import { DEFAULT_BREAKER, withCircuitBreaker } from '../../adapters/embedding/circuit.ts';
import { createEmbedder, type Embedder } from '../../adapters/embedding/index.ts';
import { createRunner, type BatchHandler, type RunnerOptions, type Runner } from '../../adapters/kafka/runner.ts';
import { done, HEADER, skipped, type InMessage, type Outcome, type OutMessage } from '../../adapters/kafka/message.ts';
import { markDeadLetters, markOutbox } from '../../adapters/postgres/ledger.ts';
import { classifyPgError } from '../../domain/pg-errors.ts';
import { chunkTopicSpec, provisionTopics } from '../../adapters/kafka/admin.ts';
import { metrics } from '../../adapters/telemetry/metrics.ts';
import { ModelRegistry, type EmbeddingModel } from '../../adapters/postgres/models.ts';
import type { Service } from '../runtime/service.ts';
import type { Runtime } from '../runtime/index.ts';
import { createChunker, type Chunker, type TextChunk } from '../../domain/transforms/chunker.ts';
import { documentContentHash } from '../../domain/transforms/content-hash.ts';
import { decodeOutbox, OversizedUpsertError } from '../../domain/transforms/decode-outbox.ts';
import { EmbeddingCache } from '../../adapters/postgres/embedding-cache.ts';
import { gateSlice, PriorityGate, type GatePriority, type Priority } from './priority-gate.ts';
import { decide } from './plan.ts';
import { pauseRecorder } from '../../adapters/postgres/pauses.ts';
import { readDocuments, sourceKey, type SourceDocument } from './source.ts';

export interface EmbedderOptions {
  lanes?: Priority[];
  groupId?: (lane: Priority) => string;
  /** Topic per lane; defaults to vecsync.outbox.<lane>. */
  topicOf?: (lane: Priority) => string;
  maxBatch?: number;
  embedder?: Embedder;
  onCommitted?: RunnerOptions['onCommitted'];
}

interface Pending {
  i: number;
  message: InMessage;
  event: UpsertEvent;
  model: EmbeddingModel;
  doc: SourceDocument;
  body: string;
  chunks: TextChunk[];
}

export async function createEmbedderService(
  rt: Runtime,
  options: EmbedderOptions = {},
): Promise<Service & { embedder: Embedder }> {
  const { config } = rt;
  const provider = options.embedder ?? createEmbedder({ ...config.embedder, retry: config.retry, log: rt.log });
  const embedder = withCircuitBreaker(provider, {
    ...DEFAULT_BREAKER,
    resetTimeoutMs: config.embedder.breakerResetMs,
  });
  const served = modelKey(config.embedder.model, config.embedder.version);
  const codec = createChunkCodec(config.schemaRegistryUrl);
  const cache = new EmbeddingCache(rt.source);
  const models = new ModelRegistry(rt.source);
  const gate = new PriorityGate(1);
  const chunkers = new Map<string, Chunker>();
  const chunkTopic = rt.topics.chunks(served);

  function chunkerFor(model: EmbeddingModel): Chunker {
    let chunker = chunkers.get(model.modelKey);
    if (!chunker) {
      chunker = createChunker({
        size: model.chunkSize,
        overlap: model.chunkOverlap,
        maxChunks: config.limits.maxChunks,
      });
      chunkers.set(model.modelKey, chunker);
    }
    return chunker;
  }

  /** Embeddings for every distinct chunk hash, from the cache or the provider (in batches). */
  async function embedAll(
    lane: GatePriority,
    texts: Map<string, string>,
    signal: AbortSignal,
  ): Promise<Map<string, Float32Array>> {
    const vectors = await cache.get(served, [...texts.keys()]);
    metrics.embeddings.inc({ model: served, result: 'cached' }, vectors.size);
    const missing = [...texts.keys()].filter((h) => !vectors.has(h));
    const fresh = new Map<string, Float32Array>();
    const step = gateSlice(lane, config.embedder.batchSize, embedder.computeBatch);
    for (let i = 0; i < missing.length; i += step) {
      const hashes = missing.slice(i, i + step);
      const out = await gate.run(lane, () =>
        embedder.embed(
          hashes.map((h) => texts.get(h)!),
          signal,
        ),
      );
      hashes.forEach((h, j) => fresh.set(h, out[j]!));
    }
    metrics.embeddings.inc({ model: served, result: 'computed' }, fresh.size);
    await cache.put(served, fresh);
    for (const [h, v] of fresh) vectors.set(h, v);
    return vectors;
  }

  function chunkRecord(
    p: { message: InMessage; event: UpsertEvent },
    doc: SourceDocument,
    contentHash: string,
    chunks: DocumentChunks['chunks'],
    withdrawn: boolean,
  ): DocumentChunks {
    return {
      tenant_id: doc.tenantId,
      document_id: doc.documentId,
      document_version: doc.version,
      // The ACL is read with the document, so it is the newest one (never older than the ledger's).
      acl_version: doc.aclVersion,
      // A withdrawn document is visible to nobody: fail closed.
      acl: withdrawn ? [] : doc.acl,
      chunk_count: chunks.length,
      model_key: served,
      title: withdrawn ? null : doc.title,
      metadata: withdrawn ? {} : (doc.metadata ?? {}),
      content_hash: contentHash,
      created_at: p.event.created_at,
      // A withdrawn document's outbox row is marked failed by the dead-letter path, not processed.
      outbox_id: withdrawn
        ? null
        : p.message.headers[HEADER.outboxId]
          ? Number(p.message.headers[HEADER.outboxId])
          : null,
      chunks,
    };
  }

  async function encodeOut(lane: Priority, message: InMessage, record: DocumentChunks): Promise<OutMessage> {
    return {
      key: message.key,
      value: await codec.encode(record),
      headers: {
        [HEADER.outboxId]: message.headers[HEADER.outboxId] ?? '',
        [HEADER.lane]: lane,
        [HEADER.createdAt]: message.headers[HEADER.createdAt] ?? record.created_at,
        [HEADER.traceId]: message.headers[HEADER.traceId] ?? randomUUID(),
      },
    };
  }

  function handlerFor(lane: Priority): BatchHandler {
    return async (messages, { signal }) => {
      const outcomes: Outcome[] = messages.map(() => done);
      const upserts: { i: number; message: InMessage; event: UpsertEvent; model: EmbeddingModel }[] = [];
      // Upserts over a size limit in their payload: dead-lettered, and withdrawn from search when
      // the source holds the document at that version (the same fail-closed rule as `decide`).
      const oversized: { message: InMessage; event: UpsertEvent }[] = [];
      for (const [i, message] of messages.entries()) {
        try {
          const { event } = decodeOutbox(message, config.limits);
          if (event.op !== 'upsert') {
            throw new PoisonMessageError('wrong_lane', `${event.op} events belong on the priority lane, not ${lane}`);
          }
          const key = modelKey(event.model.name, event.model.version);
          const model = await models.get(key);
          if (!model) throw new PoisonMessageError('unknown_model', `model ${key} is not in vecsync.embedding_models`);
          if (key !== served) {
            outcomes[i] = skipped; // another embedder deployment serves that model
            continue;
          }
          upserts.push({ i, message, event, model });
        } catch (error) {
          if (!(error instanceof PoisonMessageError)) throw error;
          outcomes[i] = { kind: 'dead', error };
          if (
            error instanceof OversizedUpsertError &&
            modelKey(error.event.model.name, error.event.model.version) === served
          ) {
            oversized.push({ message, event: error.event });
          }
        }
      }
      if (upserts.length === 0 && oversized.length === 0) return outcomes;
      const docs = await readDocuments(
        rt.source,
        [...upserts, ...oversized].map((u) => ({ tenantId: u.event.tenant_id, documentId: u.event.document_id })),
        config.limits,
      );
      const out: OutMessage[] = [];
      for (const o of oversized) {
        let decision;
        try {
          decision = decide(o.event, docs.get(sourceKey(o.event.tenant_id, o.event.document_id)), config.limits);
        } catch (error) {
          if (error instanceof PoisonMessageError) continue; // dead-lettered already
          throw error;
        }
        if (decision.kind === 'withdraw') {
          out.push(await encodeOut(lane, o.message, chunkRecord(o, decision.doc, decision.doc.contentHash, [], true)));
        }
      }
      const pending: Pending[] = [];
      // Events a later event supersedes are finished here: nothing reaches the writer for them.
      const superseded: string[] = [];
      for (const u of upserts) {
        try {
          const decision = decide(u.event, docs.get(sourceKey(u.event.tenant_id, u.event.document_id)), config.limits);
          if (decision.kind === 'skip') {
            outcomes[u.i] = skipped;
            const id = u.message.headers[HEADER.outboxId];
            if (id) superseded.push(id);
            continue;
          }
          if (decision.kind === 'withdraw') {
            out.push(
              await encodeOut(lane, u.message, chunkRecord(u, decision.doc, decision.doc.contentHash, [], true)),
            );
            outcomes[u.i] = { kind: 'dead', error: decision.error };
            continue;
          }
          const body = decision.doc.body ?? '';
          pending.push({ ...u, doc: decision.doc, body, chunks: await chunkerFor(u.model).chunk(body) });
        } catch (error) {
          if (!(error instanceof PoisonMessageError)) throw error;
          // Over a chunk limit is over a size limit too: out of search, and dead-lettered.
          const doc = docs.get(sourceKey(u.event.tenant_id, u.event.document_id));
          if (doc) out.push(await encodeOut(lane, u.message, chunkRecord(u, doc, doc.contentHash, [], true)));
          outcomes[u.i] = { kind: 'dead', error };
        }
      }
      // Important live documents are embedded and sent first, ahead of the rest of the batch and
      // (through the gate) of other live work; on the bulk lane importance only orders the plan.
      const important = lane === 'live' ? pending.filter((p) => (p.event.importance ?? 0) > 0) : [];
      if (important.length > 0) await rt.producer.send(chunkTopic, await embedded(important, 'important', signal));
      const rest = important.length > 0 ? pending.filter((p) => !important.includes(p)) : pending;
      out.push(...(await embedded(rest, lane, signal)));
      await rt.producer.send(chunkTopic, out);
      if (superseded.length > 0) {
        try {
          await markOutbox(rt.source, superseded, 'processed');
        } catch (error) {
          throw classifyPgError(error, 'outbox status');
        }
      }
      return outcomes;
    };
  }

  /** Embeds `pending` through the gate at `priority` and encodes their chunk records. */
  async function embedded(pending: Pending[], priority: GatePriority, signal: AbortSignal): Promise<OutMessage[]> {
    if (pending.length === 0) return [];
    const lane: Priority = priority === 'important' ? 'live' : priority;
    const texts = new Map<string, string>();
    for (const p of pending) for (const c of p.chunks) texts.set(c.contentHash, c.content);
    const vectors = texts.size > 0 ? await embedAll(priority, texts, signal) : new Map<string, Float32Array>();
    const out: OutMessage[] = [];
    for (const p of pending) {
      const chunks = p.chunks.map((c) => ({
        chunk_index: c.index,
        content: c.content,
        content_hash: c.contentHash,
        embedding: vectors.get(c.contentHash)!,
      }));
      const hash = documentContentHash(p.doc.title, p.body);
      out.push(await encodeOut(lane, p.message, chunkRecord(p, p.doc, hash, chunks, false)));
    }
    return out;
  }

  const lanes = options.lanes ?? ['live', 'bulk'];
  const runners: Runner[] = lanes.map((lane) =>
    createRunner(rt.kafka, {
      newGroupAtEnd: rt.newGroupsAtEnd,
      service: 'embedder',
      groupId: options.groupId?.(lane) ?? `${rt.groupId('embedder')}.${lane}`,
      topics: [options.topicOf?.(lane) ?? rt.topics.lane(lane)],
      handler: handlerFor(lane),
      // Bulk slices stay small so a live document waits behind at most one of them.
      maxBatch: options.maxBatch ?? (lane === 'live' ? 200 : 64),
      partitionsConsumedConcurrently: lane === 'live' ? 3 : 2,
      retry: config.retry,
      producer: rt.producer,
      dlqTopic: rt.topics.dlq('embedder'),
      laneOf: rt.laneOf,
      log: rt.log.child({ service: 'embedder', lane }),
      onDeadLetter: (letters) => markDeadLetters(rt.source, letters),
      onPauseChange: pauseRecorder(rt.source, config.sink.name, 'embedder'),
      ...(options.onCommitted ? { onCommitted: options.onCommitted } : {}),
    }),
  );

  return {
    name: 'embedder',
    embedder,
    async start() {
      await provisionTopics(rt.kafka, [chunkTopicSpec(chunkTopic)]);
      await codec.register(chunkTopic);
      // A local model is fetched and loaded before consuming, not inside the first batch (and
      // after the chunk topic exists: a writer started beside this service subscribes to it).
      await provider.warmUp?.();
      await Promise.all(runners.map((r) => r.start()));
    },
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
    },
  };
}
