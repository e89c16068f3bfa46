/**
 * The batch runner and its retry policy without a broker: an in-memory stand-in for the part of
 * the kafkajs consumer the runner uses (connect, subscribe, run, disconnect, the eachBatch payload)
 * records heartbeats and commits; a stand-in producer records dead letters and when Kafka would
 * have acknowledged them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConsumerRunConfig, EachBatchPayload } from 'kafkajs';
import { PoisonMessageError, RetriableError } from '../../domain/errors.ts';
import { createLogger } from '../telemetry/log.ts';
import { DLQ_HEADER } from './dlq.ts';
import type { InMessage, Outcome, OutMessage } from './message.ts';
import type { Producer } from './producer.ts';
import { createRunnerWith, type BatchHandler, type RunnerConsumer, type RunnerOptions } from './runner.ts';

const TOPIC = 'vecsync.outbox.live';

/** The events of one run, in order: what the broker would have seen. */
type Event = { kind: 'commit'; partition: number; offset: string } | { kind: 'dlq-ack'; count: number };

class MemoryConsumer {
  readonly events = { CRASH: 'consumer.crash' } as RunnerConsumer['events'];
  readonly log: Event[];
  heartbeats = 0;
  /** From this heartbeat on (1-based), heartbeats answer that the group is rebalancing. */
  rebalanceFromHeartbeat = Number.POSITIVE_INFINITY;
  /** Commits answer that the group is rebalancing. */
  rebalanceOnCommit = false;
  private eachBatch: ConsumerRunConfig['eachBatch'];
  private running = false;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(log: Event[]) {
    this.log = log;
  }

  async connect() {}
  async subscribe() {}
  async run(config?: ConsumerRunConfig) {
    this.eachBatch = config?.eachBatch;
    this.running = true;
  }
  /** Like kafkajs: stop fetching, wait for the batch in flight, leave. */
  async disconnect() {
    this.running = false;
    await this.inFlight.catch(() => undefined);
  }
  on() {
    return () => undefined;
  }
  /** As kafkajs: once a stop has begun it returns without committing. */
  async commitOffsets(offsets: { topic: string; partition: number; offset: string }[]) {
    if (!this.running) return;
    for (const o of offsets) this.log.push({ kind: 'commit', partition: o.partition, offset: o.offset });
  }

  /** Hands one batch to the runner; resolves (or rejects) when its eachBatch does. */
  deliver(partition: number, values: string[], firstOffset = 0): Promise<void> {
    const messages = values.map((v, i) => ({
      offset: String(firstOffset + i),
      key: Buffer.from(`t:${v}`),
      value: Buffer.from(v),
      headers: {},
      timestamp: String(Date.now()),
      attributes: 0,
      size: 0,
    }));
    const payload = {
      batch: {
        topic: TOPIC,
        partition,
        highWatermark: String(firstOffset + values.length),
        messages,
      },
      resolveOffset: () => undefined,
      heartbeat: async () => {
        this.heartbeats++;
        if (this.heartbeats >= this.rebalanceFromHeartbeat)
          throw Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), {
            type: 'REBALANCE_IN_PROGRESS',
          });
      },
      commitOffsetsIfNecessary: async (offsets?: {
        topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
      }) => {
        if (this.rebalanceOnCommit) throw Object.assign(new Error('rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
        for (const t of offsets?.topics ?? [])
          for (const p of t.partitions) this.log.push({ kind: 'commit', partition: p.partition, offset: p.offset });
      },
      uncommittedOffsets: () => ({ topics: [] }),
      isRunning: () => this.running,
      isStale: () => false,
      pause: () => () => undefined,
    } as unknown as EachBatchPayload;
    this.inFlight = this.eachBatch!(payload);
    return this.inFlight;
  }
}

class MemoryProducer implements Producer {
  readonly sent: { topic: string; message: OutMessage }[] = [];
  failing = false;
  constructor(private readonly log: Event[]) {}
  async send(topic: string, messages: OutMessage[]) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (this.failing) throw new RetriableError('broker unavailable');
    for (const message of messages) this.sent.push({ topic, message });
    this.log.push({ kind: 'dlq-ack', count: messages.length });
  }
  async close() {}
}

interface Harness {
  consumer: MemoryConsumer;
  producer: MemoryProducer;
  log: Event[];
  committed: { value: string; outcome: Outcome }[];
  deadLettered: string[];
  runner: ReturnType<typeof createRunnerWith>;
}

async function harness(handler: BatchHandler, overrides: Partial<RunnerOptions> = {}): Promise<Harness> {
  const log: Event[] = [];
  const consumer = new MemoryConsumer(log);
  const producer = new MemoryProducer(log);
  const committed: Harness['committed'] = [];
  const deadLettered: string[] = [];
  const runner = createRunnerWith(() => consumer as unknown as RunnerConsumer, {
    service: 'test',
    groupId: 'test.group',
    topics: [TOPIC],
    handler,
    maxBatch: 2,
    retry: { maxAttempts: 3, initialMs: 5, maxMs: 20 },
    producer,
    dlqTopic: 'test.dlq',
    laneOf: () => 'live',
    log: createLogger('silent'),
    onDeadLetter: async (letters) => {
      deadLettered.push(...letters.map((l) => l.message.value!.toString()));
    },
    onCommitted: (messages, outcomes) =>
      messages.forEach((m, i) => committed.push({ value: m.value!.toString(), outcome: outcomes[i]! })),
    ...overrides,
  });
  await runner.start();
  return { consumer, producer, log, committed, deadLettered, runner };
}

const value = (m: InMessage) => m.value!.toString();

describe('batch runner (in-memory consumer)', () => {
  test('slice isolation: a failing slice is retried message by message, the rest still applies', async () => {
    const calls: string[][] = [];
    const h = await harness(async (messages) => {
      calls.push(messages.map(value));
      if (messages.some((m) => value(m) === 'bad')) throw new Error('cannot handle bad');
      return messages.map((): Outcome => ({ kind: 'done' }));
    });
    await h.consumer.deliver(0, ['a', 'bad', 'b', 'c']);
    // Slice [a, bad] three times (maxAttempts), then a alone, bad alone three times; then [b, c].
    assert.deepEqual(calls, [['a', 'bad'], ['a', 'bad'], ['a', 'bad'], ['a'], ['bad'], ['bad'], ['bad'], ['b', 'c']]);
    assert.deepEqual(
      h.committed.map((c) => [c.value, c.outcome.kind]),
      [
        ['a', 'done'],
        ['bad', 'dead'],
        ['b', 'done'],
        ['c', 'done'],
      ],
    );
    assert.deepEqual(
      h.producer.sent.map((s) => s.message.value?.toString()),
      ['bad'],
    );
    assert.deepEqual(
      h.log.filter((e) => e.kind === 'commit').map((e) => (e as { offset: string }).offset),
      ['2', '4'],
      'one commit per slice, each the offset after its last message',
    );
  });

  test('attempt counting: slice attempts plus isolation attempts; poison once; retriable until it works', async () => {
    let flaky = 0;
    const h = await harness(async (messages) => {
      const v = messages.map(value);
      if (v.includes('poison')) throw new PoisonMessageError('bad_payload', 'not JSON');
      if (v.includes('bad')) throw new Error('unexpected');
      if (v.includes('flaky') && ++flaky < 5) throw new RetriableError('sink down');
      return messages.map((): Outcome => ({ kind: 'done' }));
    });
    await h.consumer.deliver(0, ['bad', 'x']);
    await h.consumer.deliver(1, ['poison']);
    await h.consumer.deliver(2, ['flaky']);
    const attempts = Object.fromEntries(
      h.producer.sent.map((s) => [s.message.value!.toString(), s.message.headers![DLQ_HEADER.attempts]]),
    );
    // bad: 3 tries in its slice, then 3 alone; poison is never retried.
    assert.deepEqual(attempts, { bad: '6', poison: '1' });
    assert.equal(
      h.producer.sent.find((s) => s.message.value!.toString() === 'poison')!.message.headers![DLQ_HEADER.reason],
      'bad_payload',
    );
    assert.equal(flaky, 5, 'a retriable error is retried beyond maxAttempts until it succeeds');
    assert.deepEqual(
      h.committed.map((c) => [c.value, c.outcome.kind]),
      [
        ['bad', 'dead'],
        ['x', 'done'],
        ['poison', 'dead'],
        ['flaky', 'done'],
      ],
    );
  });

  test('dead letters are acknowledged by Kafka before the offset is committed', async () => {
    const h = await harness(async (messages) =>
      messages.map((m): Outcome => (value(m) === 'bad' ? { kind: 'dead', error: new Error('no') } : { kind: 'done' })),
    );
    await h.consumer.deliver(0, ['a', 'bad']);
    assert.deepEqual(h.log, [
      { kind: 'dlq-ack', count: 1 },
      { kind: 'commit', partition: 0, offset: '2' },
    ]);
    assert.deepEqual(h.deadLettered, ['bad'], 'onDeadLetter ran');
    // When the dead-letter topic cannot be written, nothing is committed.
    h.producer.failing = true;
    await assert.rejects(h.consumer.deliver(0, ['c', 'bad'], 2), /broker unavailable/);
    assert.equal(h.log.filter((e) => e.kind === 'commit').length, 1, 'no commit without the dead letter');
  });

  test('recording dead letters is retried in place: each dead letter is sent once, then committed', async () => {
    let failures = 2;
    const recorded: string[] = [];
    const h = await harness(
      async (messages) =>
        messages.map((m): Outcome =>
          value(m) === 'bad' ? { kind: 'dead', error: new Error('no') } : { kind: 'done' },
        ),
      {
        onDeadLetter: async (letters) => {
          if (failures-- > 0) throw new RetriableError('source unavailable');
          recorded.push(...letters.map((l) => value(l.message)));
        },
      },
    );
    await h.consumer.deliver(0, ['a', 'bad']);
    assert.deepEqual(recorded, ['bad']);
    assert.deepEqual(h.log, [
      { kind: 'dlq-ack', count: 1 },
      { kind: 'commit', partition: 0, offset: '2' },
    ]);
  });

  test('stop aborts a slice that is retrying: no commit, no dead letter', async () => {
    let signal: AbortSignal | undefined;
    const h = await harness(
      async (_messages, ctx) => {
        signal = ctx.signal;
        throw new RetriableError('sink down');
      },
      { retry: { maxAttempts: 3, initialMs: 5, maxMs: 20 } },
    );
    const delivered = h.consumer.deliver(0, ['a', 'b']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await h.runner.stop(150);
    await assert.rejects(delivered, /stopping/);
    assert.ok(Date.now() - started < 1000, 'stop returns after the grace period');
    assert.equal(signal?.aborted, true, 'the handler sees the abort');
    assert.deepEqual(h.log, [], 'nothing committed, nothing dead-lettered');
  });

  test('graceful stop finishes and commits the slice in flight, and starts no other', async () => {
    const h = await harness(async (messages) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      return messages.map((): Outcome => ({ kind: 'done' }));
    });
    const delivered = h.consumer.deliver(0, ['a', 'b', 'c', 'd']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await h.runner.stop(5_000);
    await delivered;
    assert.deepEqual(h.log, [{ kind: 'commit', partition: 0, offset: '2' }]);
  });

  test('a rebalance seen by a heartbeat stops a retrying slice, uncommitted', { timeout: 10_000 }, async () => {
    let calls = 0;
    const h = await harness(
      async () => {
        calls++;
        throw new RetriableError('sink down');
      },
      // Backoff long enough that only the rebalance can end the wait.
      { retry: { maxAttempts: 3, initialMs: 60_000, maxMs: 60_000 } },
    );
    h.consumer.rebalanceFromHeartbeat = 2;
    const started = Date.now();
    await h.consumer.deliver(0, ['a', 'b']);
    assert.ok(Date.now() - started < 5_000, `gave the slice up in ${Date.now() - started} ms`);
    assert.ok(calls >= 1);
    assert.deepEqual(h.log, [], 'nothing committed, nothing dead-lettered: the next owner redelivers');
    await h.runner.stop();
  });

  test('a rebalance before the commit leaves the slice to the next owner without failing the batch', async () => {
    const h = await harness(async (messages) => messages.map((): Outcome => ({ kind: 'done' })));
    h.consumer.rebalanceOnCommit = true;
    await h.consumer.deliver(0, ['a', 'b', 'c']);
    assert.deepEqual(h.log, []);
    assert.deepEqual(h.committed, [], 'onCommitted only after a commit');
    await h.runner.stop();
  });
});
