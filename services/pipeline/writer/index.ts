/**
 * The writer: chunk records (vecsync.chunks.<model>) → sink, guarded by the ledger. A thin adapter
 * around `planWriterBatch`: decode, lock, plan, write, record, and only then let the runner commit.
 */
import type pg from 'pg';
import { createChunkCodec } from '../../adapters/kafka/chunk-codec.ts';
import { isRetriable, PoisonMessageError } from '../../domain/errors.ts';
import type { DocumentChunks } from '../../domain/types.ts';
import { createRunner, type BatchHandler, type RunnerOptions } from '../../adapters/kafka/runner.ts';
import { done, skipped, type Outcome } from '../../adapters/kafka/message.ts';
import { Ledger, ledgerKeyString, markDeadLetters } from '../../adapters/postgres/ledger.ts';
import { ModelRegistry } from '../../adapters/postgres/models.ts';
import { pauseRecorder } from '../../adapters/postgres/pauses.ts';
import type { Service } from '../runtime/service.ts';
import type { Runtime } from '../runtime/index.ts';
import type { IndexSpec, ItemResult, Sink } from '../../adapters/sinks/types.ts';
import { ledgerKeyOf, planWriterBatch } from './plan.ts';
import { chunkTopicSpec, provisionTopics } from '../../adapters/kafka/admin.ts';

export interface WriterOptions {
  /** Chunk topics to consume; defaults to the active model's. */
  topics?: string[];
  groupId?: string;
  maxBatch?: number;
  onCommitted?: RunnerOptions['onCommitted'];
}

export interface WriterDeps {
  sink: Sink;
  /** The source database (ledger, model registry, outbox status). */
  source: pg.Pool;
  sinkName: string;
  schemaRegistryUrl: string;
}

/**
 * The writer's batch handler, without Kafka: decode, lock, plan, write, record. The service wires
 * it to a runner; tests can call it directly with messages.
 */
export function createWriterHandler({ sink, source, sinkName, schemaRegistryUrl }: WriterDeps): BatchHandler {
  const codec = createChunkCodec(schemaRegistryUrl);
  const ledger = new Ledger(source, sinkName);
  const models = new ModelRegistry(source);
  const ensured = new Set<string>();

  async function indexFor(modelKey: string): Promise<IndexSpec> {
    const model = await models.get(modelKey);
    if (!model) throw new PoisonMessageError('unknown_model', `model ${modelKey} is not in vecsync.embedding_models`);
    const index = { modelKey, dimensions: model.dimensions };
    if (!ensured.has(modelKey)) {
      await sink.ensureIndex(index);
      ensured.add(modelKey);
    }
    return index;
  }

  const handler: BatchHandler = async (messages) => {
    const outcomes: Outcome[] = messages.map(() => done);
    const decoded: { i: number; record: DocumentChunks }[] = [];
    for (const [i, message] of messages.entries()) {
      try {
        const record = await codec.decode(message.value ?? Buffer.alloc(0));
        if (message.key !== `${record.tenant_id}:${record.document_id}`) {
          throw new PoisonMessageError('key_mismatch', `key ${JSON.stringify(message.key)} does not match the record`);
        }
        await indexFor(record.model_key);
        decoded.push({ i, record });
      } catch (error) {
        if (isRetriable(error)) throw error;
        outcomes[i] = { kind: 'dead', error };
      }
    }
    if (decoded.length === 0) return outcomes;
    const records = decoded.map((d) => d.record);
    const failed = await ledger.withLocked(records.map(ledgerKeyOf), async (rows, tx) => {
      const plan = planWriterBatch(records, rows);
      const failedKeys = new Map<string, unknown>();
      const collect = (keys: string[], results: ItemResult[]) =>
        results.forEach((result, j) => {
          if (result.ok) return;
          // An unavailable sink fails the whole slice: roll back, retry later, commit nothing.
          if (isRetriable(result.error)) throw result.error;
          failedKeys.set(keys[j]!, result.error);
        });
      for (const [modelKey, items] of plan.writes) {
        const results = await sink.writeDocuments(
          await indexFor(modelKey),
          items.map((x) => x.write),
        );
        collect(
          items.map((x) => x.key),
          results,
        );
      }
      for (const [modelKey, items] of plan.aclWrites) {
        const results = await sink.setAcls(
          [await indexFor(modelKey)],
          items.map((x) => x.write),
        );
        collect(
          items.map((x) => x.key),
          results,
        );
      }
      const processed = records
        .filter((r) => !failedKeys.has(ledgerKeyString(ledgerKeyOf(r))))
        .map((r) => String(r.outbox_id ?? ''));
      await tx.record(
        [...plan.next].filter(([key]) => !failedKeys.has(key)).map(([, row]) => row),
        processed,
      );
      decoded.forEach(({ i }, j) => {
        outcomes[i] = plan.results[j] === 'applied' ? done : skipped;
      });
      return failedKeys;
    });
    decoded.forEach(({ i, record }) => {
      const error = failed.get(ledgerKeyString(ledgerKeyOf(record)));
      if (error !== undefined) outcomes[i] = { kind: 'dead', error };
    });
    return outcomes;
  };
  return handler;
}

export async function createWriterService(rt: Runtime, options: WriterOptions = {}): Promise<Service & { sink: Sink }> {
  const sink = rt.sink;
  const handler = createWriterHandler({
    sink,
    source: rt.source,
    sinkName: rt.config.sink.name,
    schemaRegistryUrl: rt.config.schemaRegistryUrl,
  });

  const runner = createRunner(rt.kafka, {
    newGroupAtEnd: rt.newGroupsAtEnd,
    service: 'writer',
    groupId: options.groupId ?? rt.groupId('writer'),
    topics: options.topics ?? [rt.topics.chunks(rt.activeIndex.modelKey)],
    handler,
    maxBatch: options.maxBatch ?? 500,
    retry: rt.config.retry,
    producer: rt.producer,
    dlqTopic: rt.topics.dlq('writer'),
    laneOf: rt.laneOf,
    log: rt.log.child({ service: 'writer' }),
    onDeadLetter: (letters) => markDeadLetters(rt.source, letters),
    // A sink that refuses our credentials pauses the writer (retried, never dead-lettered).
    onPauseChange: pauseRecorder(rt.source, rt.config.sink.name, 'writer'),
    ...(options.onCommitted ? { onCommitted: options.onCommitted } : {}),
  });

  return {
    name: 'writer',
    sink,
    async start() {
      await sink.healthCheck();
      await sink.ensureIndex(rt.activeIndex);
      // Subscribing to a topic that does not exist yet fails; the embedder may not have started.
      await provisionTopics(rt.kafka, [chunkTopicSpec(rt.topics.chunks(rt.activeIndex.modelKey))]);
      await runner.start();
    },
    async stop() {
      await runner.stop();
    },
  };
}
