/**
 * The kafkajs implementation of the client-neutral interface, with vecsync's settings of today:
 * the client from createKafka (client.ts), the producer from createProducer (producer.ts), and the
 * consumer settings of the runner (runner.ts).
 */
import { createRequire } from 'node:module';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { CONSUMER_SETTINGS, FETCH_SETTINGS, createKafka, isLostAssignment, type Kafka } from '../client.ts';
import { createProducer } from '../producer.ts';
import { toInMessage } from '../runner.ts';
import { nextOffset, sliceBatches } from './batches.ts';
import type { ClientSettings, GroupMember, KafkaClient, MemberOptions } from './types.ts';

const VERSION = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version;

export function createKafkajsClient(settings: ClientSettings): KafkaClient {
  const kafka = createKafka(settings.brokers, settings.clientId, settings.log);
  const admin = kafka.admin();
  let adminConnected: Promise<void> | undefined;
  const connected = async () => {
    adminConnected ??= admin.connect();
    await adminConnected;
    return admin;
  };
  return {
    name: 'kafkajs',
    version: VERSION,
    createProducer: () => createProducer(kafka),
    createMember: (options) => createMember(kafka, options),
    async createTopic(topic, partitions) {
      await (await connected()).createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    },
    async deleteTopics(topics) {
      await (await connected()).deleteTopics({ topics });
    },
    async committedOffsets(groupId, topic) {
      const [answer] = await (await connected()).fetchOffsets({ groupId, topics: [topic] });
      const offsets = new Map<number, string>();
      for (const p of answer?.partitions ?? []) if (p.offset !== '-1') offsets.set(p.partition, p.offset);
      return offsets;
    },
    async close() {
      if (adminConnected) await admin.disconnect();
    },
  };
}

function createMember(kafka: Kafka, options: MemberOptions): GroupMember {
  const consumer: Consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeout ?? CONSUMER_SETTINGS.sessionTimeout,
    heartbeatInterval: options.heartbeatInterval ?? CONSUMER_SETTINGS.heartbeatInterval,
    rebalanceTimeout: CONSUMER_SETTINGS.rebalanceTimeout,
    maxWaitTimeInMs: FETCH_SETTINGS.maxWaitMs,
    maxBytesPerPartition: FETCH_SETTINGS.maxBytesPerPartition,
    allowAutoTopicCreation: false,
  });
  let leaving = false;
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const stopped = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // A caller that only calls leave() must not see an unhandled rejection.
  stopped.catch(() => undefined);
  const fail = (error: unknown) => {
    settle.reject(error);
    // Not awaited here: disconnect waits for the batch in flight, which may be the caller.
    setImmediate(() => void consumer.disconnect().catch(() => undefined));
  };

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    options.onAssignment?.(
      Object.entries(payload.memberAssignment).map(([topic, partitions]) => ({
        topic,
        partitions: [...partitions].sort((a, b) => a - b),
      })),
    );
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart && !leaving) fail(payload.error);
  });

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const messages = batch.messages.map((m) => toInMessage(batch.topic, batch.partition, m));
    for (const slice of sliceBatches(messages, options.maxBatch)) {
      // Not payload.isRunning(): it turns false when leave() begins, and leaving finishes the
      // batch in flight only.
      if (leaving || payload.isStale()) return;
      try {
        await options.handler(slice);
      } catch (error) {
        fail(error);
        return;
      }
      const last = slice.messages[slice.messages.length - 1]!.offset;
      payload.resolveOffset(last);
      const offset = nextOffset(last);
      const started = performance.now();
      try {
        // Through the batch payload: consumer.commitOffsets returns without committing once a
        // stop has begun (runner.ts does the same).
        await payload.commitOffsetsIfNecessary({
          topics: [{ topic: slice.topic, partitions: [{ partition: slice.partition, offset }] }],
        });
      } catch (error) {
        // The partition moved: its next owner redelivers the batch.
        if (isLostAssignment(error)) return;
        throw error;
      }
      options.onCommit?.({ topic: slice.topic, partition: slice.partition, offset, ms: performance.now() - started });
      await payload.heartbeat();
    }
  }

  return {
    stopped,
    async start() {
      await consumer.connect();
      await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch,
      });
    },
    async leave() {
      leaving = true;
      await consumer.disconnect();
      settle.resolve();
    },
  };
}
