/**
 * The runner's consumer-group lifecycle on the real broker.
 *
 * Where a group starts: by default a new group reads its topics from the beginning (a pipeline
 * must not skip what was committed before it first ran); with `newGroupAtEnd` (the demo, which
 * writes its own input) a new group starts at the end; a group that has committed before keeps
 * its position either way.
 *
 * How it stops: a graceful stop finishes the slice in flight and commits it (kafkajs's
 * `consumer.commitOffsets` returns without committing once a stop has begun, which the in-memory
 * unit test of the runner cannot show).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { provisionTopics } from '../services/adapters/kafka/admin.ts';
import { createKafka } from '../services/adapters/kafka/client.ts';
import type { Kafka } from '../services/adapters/kafka/client.ts';
import { done } from '../services/adapters/kafka/message.ts';
import { createProducer, type Producer } from '../services/adapters/kafka/producer.ts';
import { createRunner, type Runner } from '../services/adapters/kafka/runner.ts';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { loadConfig } from '../services/config/index.ts';
import { uniqueId } from './support/ids.ts';
import { withAdmin } from './support/kafka.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const config = loadConfig();

describe('the runner on the real broker', { timeout: 120_000 }, () => {
  const startTopic = `test.runner-start.${uniqueId('t')}`;
  const stopTopic = `test.runner-stop.${uniqueId('t')}`;
  const log = createLogger('warn', 'test-runner-lifecycle');
  let kafka: Kafka;
  let producer: Producer;
  const runners: Runner[] = [];

  before(async () => {
    await ensureStack();
    kafka = createKafka(config.kafkaBrokers, 'test-runner-lifecycle', log);
    producer = await createProducer(kafka);
    await provisionTopics(kafka, [
      { topic: startTopic, partitions: 2, configs: {} },
      { topic: stopTopic, partitions: 1, configs: {} },
    ]);
    await producer.send(startTopic, [
      { key: 'a', value: Buffer.from('before-1'), headers: {} },
      { key: 'b', value: Buffer.from('before-2'), headers: {} },
    ]);
  });
  after(async () => {
    for (const r of runners) await r.stop().catch(() => undefined);
    await producer?.close();
    await withAdmin(config.kafkaBrokers, (admin) => admin.deleteTopics({ topics: [startTopic, stopTopic] })).catch(
      () => undefined,
    );
  });

  /** A started runner of `groupId` on `topic` whose handler is `handle` (every message done). */
  async function runnerOn(
    topic: string,
    groupId: string,
    newGroupAtEnd: boolean,
    handle: (values: string[]) => Promise<void> | void,
  ): Promise<Runner> {
    const runner = createRunner(kafka, {
      service: 'test',
      groupId,
      topics: [topic],
      handler: async (messages) => {
        await handle(messages.map((m) => m.value!.toString()));
        return messages.map(() => done);
      },
      maxBatch: 10,
      retry: config.retry,
      producer,
      dlqTopic: `${topic}.dlq`,
      laneOf: () => 'other',
      log,
      newGroupAtEnd,
    });
    runners.push(runner);
    await runner.start();
    return runner;
  }

  async function consume(groupId: string, newGroupAtEnd: boolean): Promise<{ seen: string[]; runner: Runner }> {
    const seen: string[] = [];
    const runner = await runnerOn(startTopic, groupId, newGroupAtEnd, (values) => void seen.push(...values));
    return { seen, runner };
  }

  test('a new group reads from the beginning by default, and from the end with newGroupAtEnd', async () => {
    const early = await consume(uniqueId('g-default'), false);
    const demo = await consume(uniqueId('g-end'), true);
    // Produced right after start() returned: the group at the end must still get it.
    await producer.send(startTopic, [{ key: 'c', value: Buffer.from('after'), headers: {} }]);
    await waitFor(() => early.seen.length >= 3 && demo.seen.includes('after'), {
      timeoutMs: 60_000,
      description: 'both groups consumed',
    });
    assert.deepEqual([...early.seen].sort(), ['after', 'before-1', 'before-2']);
    assert.deepEqual(demo.seen, ['after']);
  });

  test('a group that committed keeps its position with newGroupAtEnd', async () => {
    const groupId = uniqueId('g-resume');
    const first = await consume(groupId, false);
    await waitFor(() => first.seen.length >= 3, { timeoutMs: 60_000, description: 'first run consumed' });
    await first.runner.stop();
    await producer.send(startTopic, [{ key: 'd', value: Buffer.from('while-stopped'), headers: {} }]);
    const second = await consume(groupId, true);
    await waitFor(() => second.seen.includes('while-stopped'), {
      timeoutMs: 60_000,
      description: 'the message produced while the group was stopped',
    });
    assert.deepEqual(second.seen, ['while-stopped']);
  });

  test('finishes the slice in flight and commits it before leaving the group', async () => {
    const groupId = uniqueId('g-stop');
    let entered!: () => void;
    const inFlight = new Promise<void>((resolve) => (entered = resolve));
    let finished = false;
    // Slow, and deaf to the stop signal: the stop must wait for it, then commit.
    const runner = await runnerOn(stopTopic, groupId, true, async () => {
      entered();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      finished = true;
    });
    await producer.send(stopTopic, [{ key: 'a', value: Buffer.from('in flight'), headers: {} }]);
    await inFlight;
    await runner.stop(8_000);
    assert.ok(finished, 'the slice finished before stop() returned');
    const committed = await withAdmin(config.kafkaBrokers, (admin) =>
      admin.fetchOffsets({ groupId, topics: [stopTopic] }),
    );
    const [end] = await withAdmin(config.kafkaBrokers, (admin) => admin.fetchTopicOffsets(stopTopic));
    assert.equal(committed[0]?.partitions[0]?.offset, end!.high, 'the slice is committed: nothing to redeliver');
  });
});
