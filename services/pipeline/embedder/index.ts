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
import { createRunner, type BatchHandler, type Runner } from '../../adapters/kafka/runner.ts';
import { done, HEADER, skipped, type InMessage, type Outcome, type OutMessage } from '../../adapters/kafka/message.ts';
import { markDeadLetters } from '../../adapters/postgres/ledger.ts';
import { chunkTopicSpec, provisionTopics } from '../../adapters/kafka/admin.ts';
import { metrics } from '../../adapters/telemetry/metrics.ts';
import { ModelRegistry, type EmbeddingModel } from '../../adapters/postgres/models.ts';
import type { Service } from '../runtime/service.ts';
import type { Runtime } from '../runtime/index.ts';
import { createChunker, type Chunker, type TextChunk } from '../../domain/transforms/chunker.ts';
import { documentContentHash } from '../../domain/transforms/content-hash.ts';
import { decodeOutbox } from '../../domain/transforms/decode-outbox.ts';
import { EmbeddingCache } from '../../adapters/postgres/embedding-cache.ts';
import { PriorityGate, type GatePriority, type Priority } from './priority-gate.ts';

export interface EmbedderOptions {
  lanes?: Priority[];
  groupId?: (lane: Priority) => string;
  /** Topic per lane; defaults to vecsync.outbox.<lane>. */
  topicOf?: (lane: Priority) => string;
  maxBatch?: number;
  embedder?: Embedder;
  onCommitted?: (messages: InMessage[], outcomes: Outcome[]) => void;
}

/** Chunk topics are keyed like the lanes, so as many partitions keep the writer as parallel. */
const CHUNK_TOPIC_PARTITIONS = 6;
/** 512 chunks at 1536 dimensions is about 3 MB of float32; leave headroom. */
const CHUNK_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

interface Pending {
  i: number;
  message: InMessage;
  event: UpsertEvent;
  model: EmbeddingModel;
  chunks: TextChunk[];
}

export async function createEmbedderService(
  rt: Runtime,
  options: EmbedderOptions = {},
): Promise<Service & { embedder: Embedder }> {
  const { config } = rt;
  const embedder = withCircuitBreaker(
    options.embedder ?? createEmbedder({ ...config.embedder, retry: config.retry, log: rt.log }),
    {
      ...DEFAULT_BREAKER,
      resetTimeoutMs: config.embedder.breakerResetMs,
    },
  );
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
    for (let i = 0; i < missing.length; i += config.embedder.batchSize) {
      const hashes = missing.slice(i, i + config.embedder.batchSize);
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

  function handlerFor(lane: Priority): BatchHandler {
    return async (messages, { signal }) => {
      const outcomes: Outcome[] = messages.map(() => done);
      const pending: Pending[] = [];
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
          pending.push({ i, message, event, model, chunks: await chunkerFor(model).chunk(event.body) });
        } catch (error) {
          if (!(error instanceof PoisonMessageError)) throw error;
          outcomes[i] = { kind: 'dead', error };
        }
      }
      if (pending.length === 0) return outcomes;
      // Important live documents are embedded and sent first, ahead of the rest of the batch and
      // (through the gate) of other live work; on the bulk lane importance only orders the plan.
      const important = lane === 'live' ? pending.filter((p) => (p.event.importance ?? 0) > 0) : [];
      if (important.length > 0) await emit(important, 'important', signal);
      await emit(important.length > 0 ? pending.filter((p) => !important.includes(p)) : pending, lane, signal);
      return outcomes;
    };
  }

  /** Embeds `pending` through the gate at `lane`'s priority and sends their chunk records. */
  async function emit(pending: Pending[], lane: GatePriority, signal: AbortSignal): Promise<void> {
    if (pending.length === 0) return;
    const texts = new Map<string, string>();
    for (const p of pending) for (const c of p.chunks) texts.set(c.contentHash, c.content);
    const vectors = await embedAll(lane, texts, signal);
    const out: OutMessage[] = [];
    for (const p of pending) {
      const record: DocumentChunks = {
        tenant_id: p.event.tenant_id,
        document_id: p.event.document_id,
        document_version: p.event.version,
        acl_version: p.event.acl_version,
        acl: p.event.acl,
        chunk_count: p.chunks.length,
        model_key: served,
        title: p.event.title,
        metadata: p.event.metadata,
        content_hash: documentContentHash(p.event.title, p.event.body),
        created_at: p.event.created_at,
        outbox_id: p.message.headers[HEADER.outboxId] ? Number(p.message.headers[HEADER.outboxId]) : null,
        chunks: p.chunks.map((c) => ({
          chunk_index: c.index,
          content: c.content,
          content_hash: c.contentHash,
          embedding: vectors.get(c.contentHash)!,
        })),
      };
      out.push({
        key: p.message.key,
        value: await codec.encode(record),
        headers: {
          [HEADER.outboxId]: p.message.headers[HEADER.outboxId] ?? '',
          [HEADER.lane]: lane === 'important' ? 'live' : lane,
          [HEADER.createdAt]: p.message.headers[HEADER.createdAt] ?? p.event.created_at,
          [HEADER.traceId]: p.message.headers[HEADER.traceId] ?? randomUUID(),
        },
      });
    }
    await rt.producer.send(chunkTopic, out);
  }

  const lanes = options.lanes ?? ['live', 'bulk'];
  const runners: Runner[] = lanes.map((lane) =>
    createRunner(rt.kafka, {
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
      ...(options.onCommitted ? { onCommitted: options.onCommitted } : {}),
    }),
  );

  return {
    name: 'embedder',
    embedder,
    async start() {
      await provisionTopics(rt.kafka, [chunkTopicSpec(chunkTopic, CHUNK_TOPIC_PARTITIONS, CHUNK_MAX_MESSAGE_BYTES)]);
      await codec.register(chunkTopic);
      await Promise.all(runners.map((r) => r.start()));
    },
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
    },
  };
}
