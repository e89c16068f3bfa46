/**
 * The batch runner: the only consumer loop in vecsync. It owns offset handling, the retry policy and
 * dead-lettering, so services are handlers that turn messages into outcomes.
 *
 * Offsets are committed only after the handler returned, which means the sink acknowledged every
 * applied message and every dead letter was acknowledged by Kafka. A crash anywhere before that
 * redelivers the slice (at least once); the ledger makes redelivery a no-op in effect.
 */
import type { Consumer, ConsumerConfig, EachBatchPayload } from 'kafkajs';
import { describeError } from '../../domain/errors.ts';
import type { Logger } from '../telemetry/log.ts';
import type { RetryPolicy } from '../../domain/retry.ts';
import { withMessageRetry } from './retry-policy.ts';
import { metrics, registerAgeSource } from '../telemetry/metrics.ts';
import { CONSUMER_SETTINGS, FETCH_SETTINGS, headersToStrings, isLostAssignment, type Kafka } from './client.ts';
import { sendDeadLetters, reasonOf, type DeadLetter } from './dlq.ts';
import { createdAtMs, type InMessage, type Outcome } from './message.ts';
import type { Producer } from './producer.ts';

/** Aborts a slice still running when the grace period of a stop ends (expected, not a failure). */
export class RunnerStopping extends Error {
  constructor(service: string) {
    super(`${service} stopping`);
    this.name = 'RunnerStopping';
  }
}

export interface HandlerContext {
  signal: AbortSignal;
}

/** Returns one outcome per message, in order. Throwing fails the whole slice (retried per policy). */
export type BatchHandler = (messages: InMessage[], ctx: HandlerContext) => Promise<Outcome[]>;

export interface RunnerOptions {
  service: string;
  groupId: string;
  topics: string[];
  handler: BatchHandler;
  /** Largest slice handed to the handler at once. */
  maxBatch: number;
  partitionsConsumedConcurrently?: number;
  retry: RetryPolicy;
  producer: Producer;
  dlqTopic: string;
  /** Called after dead letters are acknowledged by Kafka and before offsets are committed. */
  onDeadLetter?: (letters: DeadLetter[]) => Promise<void>;
  /** The lane label of a topic, for metrics. */
  laneOf: (topic: string) => string;
  log: Logger;
  fromBeginning?: boolean;
  /**
   * A group with no committed offsets starts at the end of its topics instead of their beginning
   * (set explicitly before joining, so nothing produced after `start()` returns is skipped). For
   * a process that writes its own input (the demo); a pipeline keeps the default.
   */
  newGroupAtEnd?: boolean;
  /** Called when a credentials failure pauses the service (`paused`) and when it works again. */
  onPauseChange?: (pause: { paused: boolean; dependency: string; reason: string; detail: string }) => Promise<void>;
  /**
   * Called once per slice after commit (tests and the demo use it to observe progress, the
   * benchmarks to split the end-to-end time into hops).
   */
  onCommitted?: (messages: InMessage[], outcomes: Outcome[], timing: SliceTiming) => void;
}

/** When a slice was handed to the handler, when the handler returned, and when its offsets were committed (ms since epoch). */
export interface SliceTiming {
  startedAt: number;
  handledAt: number;
  committedAt: number;
}

export interface Runner {
  start(): Promise<void>;
  /** Finishes the slice in flight (up to `graceMs`), commits, and leaves the group. */
  stop(graceMs?: number): Promise<void>;
}

export function toInMessage(
  topic: string,
  partition: number,
  m: EachBatchPayload['batch']['messages'][number],
): InMessage {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString('utf8') : null,
    value: m.value,
    headers: headersToStrings(m.headers as Record<string, unknown>),
    timestamp: Number(m.timestamp),
  };
}

/** The part of the kafkajs consumer the runner uses (a unit test gives it an in-memory one). */
export type RunnerConsumer = Pick<Consumer, 'connect' | 'subscribe' | 'run' | 'disconnect' | 'on' | 'events'>;

export type ConsumerFactory = (config: ConsumerConfig) => RunnerConsumer;

export function createRunner(kafka: Kafka, options: RunnerOptions): Runner {
  const prepare = options.newGroupAtEnd ? () => newGroupAtEnd(kafka, options.groupId, options.topics) : undefined;
  return createRunnerWith((config) => kafka.consumer(config), options, prepare);
}

/** Places a group that never committed at the end of each topic (partitions it committed stay). */
async function newGroupAtEnd(kafka: Kafka, groupId: string, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const committed = await admin.fetchOffsets({ groupId, topics });
    for (const topic of topics) {
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
      if (mine.some((p) => p.offset !== '-1')) continue;
      const ends = await admin.fetchTopicOffsets(topic);
      // Another instance of the group may have joined meanwhile: it then placed the group itself.
      await admin
        .setOffsets({ groupId, topic, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) })
        .catch(() => undefined);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Raised inside a slice when the group rebalances: the slice is given up, uncommitted. */
class AssignmentLost extends Error {
  constructor(cause: unknown) {
    super('the consumer group is rebalancing; the slice is left to the next owner of its partition', { cause });
    this.name = 'AssignmentLost';
  }
}

export function createRunnerWith(
  consumerFactory: ConsumerFactory,
  options: RunnerOptions,
  /** Runs once before the first join (group placement). */
  prepare?: () => Promise<void>,
): Runner {
  const { service, log } = options;
  const abort = new AbortController();
  let stopping = false;
  let relaunchTimer: NodeJS.Timeout | undefined;

  /**
   * kafkajs restarts a crashed consumer by itself, except after errors it calls non-retriable (e.g.
   * "Failed to find group coordinator" while a broker restarts). Such a consumer would stay dead in a
   * live process, so the runner replaces it, with backoff, until it runs again.
   */
  function newConsumer(): RunnerConsumer {
    const c = consumerFactory({
      groupId: options.groupId,
      ...CONSUMER_SETTINGS,
      maxWaitTimeInMs: FETCH_SETTINGS.maxWaitMs,
      maxBytesPerPartition: FETCH_SETTINGS.maxBytesPerPartition,
      allowAutoTopicCreation: false,
    });
    c.on(c.events.CRASH, (event) => {
      if (event.payload.restart || stopping) return;
      log.error(
        { err: describeError(event.payload.error) },
        'consumer crashed and will not restart by itself; replacing it',
      );
      scheduleRelaunch(1);
    });
    return c;
  }

  function scheduleRelaunch(attempt: number): void {
    clearTimeout(relaunchTimer);
    relaunchTimer = setTimeout(
      () => {
        if (stopping) return;
        void (async () => {
          await consumer.disconnect().catch(() => undefined);
          consumer = newConsumer();
          await launch();
          log.info({ attempt }, 'consumer replaced and running');
        })().catch((error: unknown) => {
          log.warn({ attempt, err: describeError(error) }, 'replacing the consumer failed; trying again');
          scheduleRelaunch(attempt + 1);
        });
      },
      Math.min(30_000, 500 * 2 ** attempt),
    );
  }

  /** Credentials pauses: one gauge, one log line per change, and the optional hook (status table). */
  const pauses = {
    current: undefined as { dependency: string; reason: string } | undefined,
    pause(dependency: string, reason: string, detail: string): void {
      if (this.current?.dependency === dependency && this.current.reason === reason) return;
      this.current = { dependency, reason };
      metrics.servicePaused.set({ service, reason: `${dependency}_${reason}` }, 1);
      log.error(
        { dependency, reason, err: detail },
        'paused: credentials refused; retrying with backoff, nothing is dead-lettered',
      );
      void options.onPauseChange?.({ paused: true, dependency, reason, detail }).catch(() => undefined);
    },
    resume(): void {
      const was = this.current;
      if (!was) return;
      this.current = undefined;
      metrics.servicePaused.set({ service, reason: `${was.dependency}_${was.reason}` }, 0);
      log.info({ dependency: was.dependency }, 'resumed: credentials accepted again');
      void options
        .onPauseChange?.({ paused: false, dependency: was.dependency, reason: was.reason, detail: '' })
        .catch(() => undefined);
    },
  };

  let consumer = newConsumer();
  /** Oldest unapplied created_at per topic-partition. */
  const pending = new Map<string, number>();
  const unregister = new Set<() => void>();
  for (const lane of new Set(options.topics.map(options.laneOf))) {
    unregister.add(
      registerAgeSource({ service, lane }, () => {
        let oldest: number | undefined;
        for (const [tp, at] of pending) {
          if (options.laneOf(tp.slice(0, tp.lastIndexOf(':'))) !== lane) continue;
          oldest = oldest === undefined ? at : Math.min(oldest, at);
        }
        return oldest;
      }),
    );
  }

  interface SliceResult {
    outcomes: Outcome[];
    /** Attempts per message (slice attempts plus isolation attempts) and when it first failed. */
    attempts: number[];
    firstFailure: Date | undefined;
  }

  /**
   * Heartbeats of one batch. A heartbeat that says the group is rebalancing marks the batch: no
   * further slice starts, and a slice that is retrying stops at once (its uncommitted messages go
   * to the partition's next owner), so the member rejoins quickly instead of holding up the group.
   */
  interface BatchState {
    payload: EachBatchPayload;
    lost: unknown;
    /** Aborts the slice in flight when it is retrying. */
    retrying: AbortController | undefined;
  }

  async function heartbeat(state: BatchState): Promise<void> {
    try {
      await state.payload.heartbeat();
    } catch (error) {
      if (!isLostAssignment(error)) return;
      state.lost ??= error;
      state.retrying?.abort(new AssignmentLost(error));
    }
  }

  async function handleSlice(slice: InMessage[], state: BatchState): Promise<SliceResult> {
    const { payload } = state;
    let firstFailure: Date | undefined;
    let attempts = 0;
    const sliceAbort = new AbortController();
    const signal = AbortSignal.any([abort.signal, sliceAbort.signal]);
    const run = (messages: InMessage[]) =>
      withMessageRetry(
        async () => {
          attempts++;
          const outcomes = await options.handler(messages, { signal });
          if (outcomes.length !== messages.length) {
            throw new TypeError(
              `${service} handler returned ${outcomes.length} outcomes for ${messages.length} messages`,
            );
          }
          return outcomes;
        },
        options.retry,
        {
          signal,
          onFailedAttempt: async (error, attempt) => {
            firstFailure ??= new Date();
            metrics.eventsFailed.inc({ service, topic: slice[0]!.topic, kind: reasonOf(error) });
            metrics.retries.inc({ service });
            log.warn(
              { attempt, topic: slice[0]!.topic, partition: payload.batch.partition, err: describeError(error) },
              'batch failed, retrying',
            );
            state.retrying = sliceAbort;
            await heartbeat(state);
            // Thrown here, p-retry stops retrying and rejects with it.
            if (state.lost !== undefined) throw new AssignmentLost(state.lost);
          },
          onPause: (c, error) => pauses.pause(c.dependency, c.reason, describeError(error)),
          onResume: () => pauses.resume(),
        },
      );
    const given = (error: unknown): boolean =>
      abort.signal.aborted || sliceAbort.signal.aborted || error instanceof AssignmentLost;
    try {
      const outcomes = await run(slice);
      return { outcomes, attempts: slice.map(() => attempts), firstFailure };
    } catch (error) {
      if (given(error)) throw error;
      firstFailure ??= new Date();
      if (slice.length === 1) return { outcomes: [{ kind: 'dead', error }], attempts: [attempts], firstFailure };
      // Isolate the message that fails: handle one by one, so the rest of the slice still applies.
      log.warn({ err: describeError(error), size: slice.length }, 'slice failed; isolating messages');
      const outcomes: Outcome[] = [];
      const perMessage: number[] = [];
      const sliceAttempts = attempts;
      for (const message of slice) {
        attempts = sliceAttempts;
        try {
          outcomes.push(...(await run([message])));
        } catch (single) {
          if (given(single)) throw single;
          outcomes.push({ kind: 'dead', error: single });
        }
        perMessage.push(attempts);
      }
      return { outcomes, attempts: perMessage, firstFailure };
    } finally {
      state.retrying = undefined;
    }
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const lane = options.laneOf(batch.topic);
    const tp = `${batch.topic}:${batch.partition}`;
    const all = batch.messages.map((m) => toInMessage(batch.topic, batch.partition, m));
    // Lag as seen on arrival: while a dependency is down the slice is retried, not committed, and
    // this is what shows the backlog building up.
    if (all.length > 0) {
      metrics.consumerLag.set(
        { group: options.groupId, topic: batch.topic, partition: String(batch.partition) },
        Number(BigInt(batch.highWatermark) - BigInt(all[0]!.offset)),
      );
    }
    const state: BatchState = { payload, lost: undefined, retrying: undefined };
    const keepAlive = setInterval(() => void heartbeat(state), CONSUMER_SETTINGS.heartbeatInterval);
    try {
      for (let i = 0; i < all.length; i += options.maxBatch) {
        // Not payload.isRunning(): it turns false when a stop begins, and a graceful stop finishes
        // the slice in flight only.
        if (stopping || payload.isStale()) return;
        if (state.lost !== undefined) {
          log.info({ topic: batch.topic, partition: batch.partition }, 'rebalancing; leaving the rest of the batch');
          return;
        }
        const slice = all.slice(i, i + options.maxBatch);
        const sliceCreatedAt = createdAtMs(slice[0]!);
        if (sliceCreatedAt !== undefined && !pending.has(tp)) pending.set(tp, sliceCreatedAt);
        const started = performance.now();
        const startedAt = Date.now();
        let result: SliceResult;
        try {
          result = await handleSlice(slice, state);
        } catch (error) {
          if (error instanceof AssignmentLost || (state.lost !== undefined && !abort.signal.aborted)) {
            log.info(
              { topic: batch.topic, partition: batch.partition, offset: slice[0]!.offset },
              'rebalancing while the slice retried; leaving it uncommitted to the next owner',
            );
            return;
          }
          throw error;
        }
        const { outcomes, attempts, firstFailure } = result;
        const handledAt = Date.now();
        const letters: DeadLetter[] = [];
        const now = new Date();
        outcomes.forEach((outcome, j) => {
          if (outcome.kind === 'dead') {
            // A poison message fails on its first attempt; firstFailure is then now.
            letters.push({
              message: slice[j]!,
              error: outcome.error,
              attempts: Math.max(1, attempts[j] ?? 1),
              firstFailure: firstFailure ?? now,
              lastFailure: now,
            });
          }
        });
        if (letters.length > 0) {
          await sendDeadLetters(options.producer, options.dlqTopic, service, options.groupId, letters);
          for (const letter of letters) {
            metrics.deadLettered.inc({ service, reason: reasonOf(letter.error) });
            log.warn(
              {
                topic: letter.message.topic,
                partition: letter.message.partition,
                offset: letter.message.offset,
                reason: reasonOf(letter.error),
                err: describeError(letter.error),
              },
              'dead-lettered',
            );
          }
          if (options.onDeadLetter) {
            const onDeadLetter = options.onDeadLetter;
            // Marking the outbox rows is retried in place (same policy): failing the batch instead
            // would redeliver it and send every dead letter of the slice again.
            try {
              await withMessageRetry(() => onDeadLetter(letters), options.retry, {
                signal: abort.signal,
                onFailedAttempt: async (error, attempt) => {
                  log.warn({ attempt, err: describeError(error) }, 'recording dead letters failed, retrying');
                  await heartbeat(state);
                  if (state.lost !== undefined) throw new AssignmentLost(state.lost);
                },
              });
            } catch (error) {
              if (!(error instanceof AssignmentLost)) throw error;
              log.info(
                { topic: batch.topic, partition: batch.partition, offset: slice[0]!.offset },
                'rebalancing while recording dead letters; leaving the slice uncommitted to the next owner',
              );
              return;
            }
          }
        }
        const last = slice[slice.length - 1]!.offset;
        payload.resolveOffset(last);
        const next = (BigInt(last) + 1n).toString();
        // Through the batch payload, not consumer.commitOffsets: that one returns without committing
        // once a stop has begun, and a graceful stop must commit the slice it finished.
        try {
          await payload.commitOffsetsIfNecessary({
            topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }],
          });
        } catch (error) {
          if (!isLostAssignment(error)) throw error;
          log.info(
            { topic: batch.topic, partition: batch.partition, offset: last, err: describeError(error) },
            'rebalanced before the commit; the next owner redelivers the slice',
          );
          return;
        }
        const committedAt = Date.now();
        for (const [j, m] of slice.entries()) {
          const outcome = outcomes[j]!;
          metrics.eventsProcessed.inc({
            service,
            topic: batch.topic,
            outcome: outcome.kind === 'dead' ? 'dead' : (outcome.result ?? 'applied'),
          });
          const at = createdAtMs(m);
          if (at !== undefined && outcome.kind === 'done')
            metrics.commitToApply.observe({ service, lane }, (committedAt - at) / 1000);
        }
        metrics.batchSize.observe({ service, topic: batch.topic }, slice.length);
        metrics.batchDuration.observe({ service, topic: batch.topic }, (performance.now() - started) / 1000);
        const lag = BigInt(batch.highWatermark) - BigInt(next);
        metrics.consumerLag.set(
          { group: options.groupId, topic: batch.topic, partition: String(batch.partition) },
          Number(lag > 0n ? lag : 0n),
        );
        const following = all[i + options.maxBatch];
        const followingAt = following ? createdAtMs(following) : undefined;
        if (lag <= 0n) pending.delete(tp);
        else if (followingAt !== undefined) pending.set(tp, followingAt);
        log.debug(
          {
            topic: batch.topic,
            partition: batch.partition,
            offset: last,
            size: slice.length,
            lag: Number(lag),
            dead: letters.length,
          },
          'slice committed',
        );
        options.onCommitted?.(slice, outcomes, { startedAt, handledAt, committedAt });
        await heartbeat(state);
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  async function launch(): Promise<void> {
    await consumer.connect();
    await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 3,
      eachBatch,
    });
  }

  return {
    async start() {
      await prepare?.();
      await launch();
    },
    async stop(graceMs = 8_000) {
      stopping = true;
      clearTimeout(relaunchTimer);
      const timer = setTimeout(() => abort.abort(new RunnerStopping(service)), graceMs);
      try {
        await consumer.disconnect();
      } finally {
        clearTimeout(timer);
        for (const off of unregister) off();
      }
    },
  };
}
