/**
 * The propagator: the priority lane (deletes, ACL changes) → sink, without re-embedding. It has its
 * own consumer group, so a saturated embedder or writer never delays a revoke.
 */
import type pg from 'pg';
import { isRetriable, PoisonMessageError } from '../../domain/errors.ts';
import { createRunner, type BatchHandler, type RunnerOptions } from '../../adapters/kafka/runner.ts';
import { done, skipped, type Outcome } from '../../adapters/kafka/message.ts';
import { Ledger, markDeadLetters } from '../../adapters/postgres/ledger.ts';
import { ModelRegistry } from '../../adapters/postgres/models.ts';
import { pauseRecorder } from '../../adapters/postgres/pauses.ts';
import type { Service } from '../runtime/service.ts';
import type { Runtime } from '../runtime/index.ts';
import type { ItemResult, Sink } from '../../adapters/sinks/types.ts';
import { mergeAclWrites } from '../../adapters/sinks/validate.ts';
import { decodeOutbox, type OutboxLimits } from '../../domain/transforms/decode-outbox.ts';
import { groupAcrossModels, ledgerKeysFor, planPropagatorBatch, type PriorityEvent } from './plan.ts';

export interface PropagatorOptions {
  topics?: string[];
  groupId?: string;
  maxBatch?: number;
  onCommitted?: RunnerOptions['onCommitted'];
}

export interface PropagatorDeps {
  sink: Sink;
  /** The source database (ledger, model registry, outbox status). */
  source: pg.Pool;
  sinkName: string;
  limits: OutboxLimits;
}

/** The propagator's batch handler, without Kafka: decode, lock every live model's row, plan, write, record. */
export function createPropagatorHandler({ sink, source, sinkName, limits }: PropagatorDeps): BatchHandler {
  const ledger = new Ledger(source, sinkName);
  const models = new ModelRegistry(source);
  const ensured = new Set<string>();

  const handler: BatchHandler = async (messages) => {
    const outcomes: Outcome[] = messages.map(() => done);
    const decoded: { i: number; event: PriorityEvent; outboxId: number | null }[] = [];
    for (const [i, message] of messages.entries()) {
      try {
        const { event, outboxId } = decodeOutbox(message, limits);
        if (event.op === 'upsert') {
          throw new PoisonMessageError('wrong_lane', 'content upserts belong on the live or bulk lane, not priority');
        }
        decoded.push({ i, event, outboxId });
      } catch (error) {
        outcomes[i] = { kind: 'dead', error };
      }
    }
    if (decoded.length === 0) return outcomes;
    const live = await models.live();
    for (const model of live) {
      if (!ensured.has(model.modelKey)) {
        await sink.ensureIndex(model);
        ensured.add(model.modelKey);
      }
    }
    const indexByKey = new Map(live.map((m) => [m.modelKey, { modelKey: m.modelKey, dimensions: m.dimensions }]));
    const modelKeys = [...indexByKey.keys()];
    const events = decoded.map((d) => d.event);
    const failedDocs = await ledger.withLocked(ledgerKeysFor(events, modelKeys), async (rows, tx) => {
      const plan = planPropagatorBatch(events, modelKeys, rows);
      const failed = new Map<string, unknown>();
      const collect = (keys: string[], results: ItemResult[]) =>
        results.forEach((result, j) => {
          if (result.ok) return;
          if (isRetriable(result.error)) throw result.error;
          failed.set(keys[j]!, result.error);
        });
      const docOf = (ref: { tenantId: string; documentId: string }) => `${ref.tenantId}:${ref.documentId}`;
      for (const group of groupAcrossModels(plan.deletes, docOf)) {
        const results = await sink.deleteDocuments(
          group.models.map((m) => indexByKey.get(m)!),
          group.entries.map((e) => e.item),
        );
        results.forEach((r, j) => group.entries[j]!.keys.forEach((key) => collect([key], [r])));
      }
      for (const group of groupAcrossModels(plan.aclWrites, docOf, mergeAclWrites)) {
        const results = await sink.setAcls(
          group.models.map((m) => indexByKey.get(m)!),
          group.entries.map((e) => e.item),
        );
        results.forEach((r, j) => group.entries[j]!.keys.forEach((key) => collect([key], [r])));
      }
      const failedDocs = new Map<string, unknown>();
      for (const [key, error] of failed) failedDocs.set(key.slice(0, key.lastIndexOf('@')), error);
      await tx.record(
        [...plan.next].filter(([key]) => !failed.has(key)).map(([, row]) => row),
        decoded
          .filter((d) => !failedDocs.has(`${d.event.tenant_id}:${d.event.document_id}`))
          .map((d) => String(d.outboxId ?? '')),
      );
      decoded.forEach(({ i }, j) => {
        outcomes[i] = plan.results[j] === 'applied' ? done : skipped;
      });
      return failedDocs;
    });
    for (const { i, event } of decoded) {
      const error = failedDocs.get(`${event.tenant_id}:${event.document_id}`);
      if (error !== undefined) outcomes[i] = { kind: 'dead', error };
    }
    return outcomes;
  };
  return handler;
}

export async function createPropagatorService(
  rt: Runtime,
  options: PropagatorOptions = {},
): Promise<Service & { sink: Sink }> {
  const sink = rt.sink;
  const handler = createPropagatorHandler({
    sink,
    source: rt.source,
    sinkName: rt.config.sink.name,
    limits: rt.config.limits,
  });

  const runner = createRunner(rt.kafka, {
    newGroupAtEnd: rt.newGroupsAtEnd,
    service: 'propagator',
    groupId: options.groupId ?? rt.groupId('propagator'),
    topics: options.topics ?? [rt.topics.lane('priority')],
    handler,
    // Small slices: a revoke waits for at most one slice ahead of it.
    maxBatch: options.maxBatch ?? 200,
    retry: rt.config.retry,
    producer: rt.producer,
    dlqTopic: rt.topics.dlq('propagator'),
    laneOf: rt.laneOf,
    log: rt.log.child({ service: 'propagator' }),
    onDeadLetter: (letters) => markDeadLetters(rt.source, letters),
    // A sink that refuses our credentials pauses the propagator (retried, never dead-lettered).
    onPauseChange: pauseRecorder(rt.source, rt.config.sink.name, 'propagator'),
    ...(options.onCommitted ? { onCommitted: options.onCommitted } : {}),
  });

  return {
    name: 'propagator',
    sink,
    async start() {
      await sink.healthCheck();
      await runner.start();
    },
    async stop() {
      await runner.stop();
    },
  };
}
