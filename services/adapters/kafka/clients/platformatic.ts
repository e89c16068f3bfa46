/**
 * The @platformatic/kafka implementation of the client-neutral interface, configured like the
 * kafkajs side (client.ts, producer.ts, runner.ts): acks=all without the idempotent producer, the
 * Java client's partitioner, no compression, no topic auto-creation, the runner's group timing
 * and fetch sizes, and an explicit commit after every batch.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  Admin,
  compatibilityPartitioner,
  Consumer,
  findErrorBy,
  ProduceAcks,
  Producer,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';
import { CONSUMER_SETTINGS, FETCH_SETTINGS, REQUEST_RETRY } from '../client.ts';
import type { InMessage, OutMessage } from '../message.ts';
import { MAX_REQUEST_BYTES, groupBySize, producerError } from '../producer.ts';
import { nextOffset, sliceBatches } from './batches.ts';
import type { ClientProducer, ClientSettings, GroupMember, KafkaClient, MemberOptions } from './types.ts';

/**
 * @platformatic/kafka 2.x declares Node >= 22.22 and calls Promise.withResolvers (Node 22) on every
 * promise-returning call; 1.x fell back when it was missing. vecsync still runs on Node 20, so the
 * same fallback is installed here (only where the runtime lacks it). Everything else the client
 * uses exists on Node 20, except zstd compression, which vecsync does not use.
 */
function ensurePromiseWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  if (typeof P.withResolvers === 'function') return;
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
ensurePromiseWithResolvers();

/** The package's own version (its exports do not include package.json). */
const VERSION = (() => {
  const entry = createRequire(import.meta.url).resolve('@platformatic/kafka');
  const pkg = JSON.parse(readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
})();

/** The settings of createKafka and of the runner's consumer (client.ts), in this client's names. */
const RETRIES = { retries: REQUEST_RETRY.retries, retryDelay: REQUEST_RETRY.initialDelayMs } as const;
const FETCH = {
  maxWaitTime: FETCH_SETTINGS.maxWaitMs,
  maxBytesPerPartition: FETCH_SETTINGS.maxBytesPerPartition,
} as const;
/** Messages a member holds unprocessed before it pauses fetching. */
const BUFFER_HIGH = 2_000;

/** The broker's error name (e.g. MESSAGE_TOO_LARGE) of a @platformatic/kafka error, if any. */
export function protocolErrorId(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 6; depth++) {
    const { apiId, errors, cause } = e as { apiId?: unknown; errors?: unknown; cause?: unknown };
    if (typeof apiId === 'string') return apiId;
    e = Array.isArray(errors) && errors.length > 0 ? errors[0] : cause;
  }
  return undefined;
}

/** The error with its broker error name where producerError (producer.ts) looks for kafkajs' `type`. */
export function withErrorType(error: unknown): unknown {
  const type = protocolErrorId(error);
  if (type === undefined) return error;
  return Object.assign(new Error(error instanceof Error ? error.message : String(error), { cause: error }), { type });
}

export function toInMessage(m: Message): InMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of m.headers) headers[k.toString('utf8')] = v.toString('utf8');
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset.toString(),
    // A null key or value arrives as null or undefined, depending on the deserializer.
    key: m.key == null ? null : m.key.toString('utf8'),
    value: m.value == null ? null : m.value,
    headers,
    timestamp: Number(m.timestamp),
  };
}

export function toProduced(topic: string, m: OutMessage) {
  const headers = new Map<Buffer, Buffer>();
  for (const [k, v] of Object.entries(m.headers ?? {})) headers.set(Buffer.from(k), Buffer.from(v));
  return {
    topic,
    key: m.key === null ? undefined : Buffer.from(m.key),
    value: m.value === null ? undefined : typeof m.value === 'string' ? Buffer.from(m.value) : m.value,
    headers,
  };
}

export function createPlatformaticClient(settings: ClientSettings): KafkaClient {
  const base = { clientId: settings.clientId, bootstrapBrokers: settings.brokers, ...RETRIES };
  let admin: Admin | undefined;
  const theAdmin = () => (admin ??= new Admin(base));
  return {
    name: 'platformatic',
    version: VERSION,
    createProducer: () => Promise.resolve(createProducer(new Producer({ ...base, autocreateTopics: false }))),
    createMember: (options) => createMember(base, options),
    async createTopic(topic, partitions) {
      const a = theAdmin();
      await a.createTopics({ topics: [topic], partitions });
      // CreateTopics answers before every partition has a leader (kafkajs' waitForLeaders).
      const deadline = Date.now() + 30_000;
      for (;;) {
        const metadata = await a.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
        const t = metadata?.topics.get(topic);
        if (t && t.partitionsCount === partitions && t.partitions.every((p) => p.leader >= 0)) return;
        if (Date.now() > deadline) throw new Error(`topic ${topic} has no leader for every partition after 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async deleteTopics(topics) {
      await theAdmin().deleteTopics({ topics });
    },
    async committedOffsets(groupId, topic) {
      const groups = await theAdmin().listConsumerGroupOffsets({ groups: [groupId] });
      const offsets = new Map<number, string>();
      for (const t of groups[0]?.topics ?? []) {
        if (t.name !== topic) continue;
        for (const p of t.partitions)
          if (p.committedOffset >= 0n) offsets.set(p.partitionIndex, p.committedOffset.toString());
      }
      return offsets;
    },
    async close() {
      await admin?.close();
    },
  };
}

function createProducer(producer: Producer): ClientProducer {
  return {
    async send(topic, messages) {
      // One request at a time, as producer.ts (maxInFlightRequests 1 there keeps per-key order).
      for (const group of groupBySize(messages, MAX_REQUEST_BYTES)) {
        try {
          await producer.send({
            acks: ProduceAcks.ALL,
            idempotent: false,
            partitioner: compatibilityPartitioner,
            messages: group.map((m) => toProduced(topic, m)),
          });
        } catch (error) {
          throw producerError(topic, withErrorType(error));
        }
      }
    },
    close: () => producer.close(),
  };
}

function createMember(
  base: { clientId: string; bootstrapBrokers: string[]; retries: number; retryDelay: number },
  options: MemberOptions,
): GroupMember {
  const consumer = new Consumer({
    ...base,
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeout ?? CONSUMER_SETTINGS.sessionTimeout,
    heartbeatInterval: options.heartbeatInterval ?? CONSUMER_SETTINGS.heartbeatInterval,
    rebalanceTimeout: CONSUMER_SETTINGS.rebalanceTimeout,
    autocommit: false,
    autocreateTopics: false,
    ...FETCH,
  });
  let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** The handling loop; it ends after the batch in flight once `leaving` is set. */
  let looping: Promise<void> = Promise.resolve();
  let leaving = false;
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const stopped = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // A caller that only calls leave() must not see an unhandled rejection.
  stopped.catch(() => undefined);

  /** Fetched, not yet handled (with the leader epoch each commit must carry, KIP-320). */
  let buffer: { message: InMessage; leaderEpoch: number }[] = [];
  /** Per partition, the offset after the last message this member handled. */
  const handledUpTo = new Map<string, bigint>();
  let wake: (() => void) | undefined;
  const signal = () => {
    wake?.();
    wake = undefined;
  };

  consumer.on('consumer:group:join', ({ assignments }) => {
    const mine = (assignments ?? []).map((a) => ({
      topic: a.topic,
      partitions: [...a.partitions].sort((x, y) => x - y),
    }));
    // Buffered messages of partitions that moved are no longer this member's to handle. (What the
    // stream fetches again from the committed offsets after a rejoin is skipped by handledUpTo.)
    const kept = new Set(mine.flatMap((a) => a.partitions.map((p) => `${a.topic}:${p}`)));
    buffer = buffer.filter((b) => kept.has(`${b.message.topic}:${b.message.partition}`));
    options.onAssignment?.(mine);
  });

  async function loop(s: MessagesStream<Buffer, Buffer, Buffer, Buffer>): Promise<void> {
    while (!leaving) {
      if (buffer.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const taken = buffer;
      buffer = [];
      if (s.isPaused() && !leaving) s.resume();
      const epochs = new Map(taken.map((t) => [t.message, t.leaderEpoch]));
      for (const batch of sliceBatches(
        taken.map((t) => t.message),
        options.maxBatch,
      )) {
        if (leaving) return;
        const key = `${batch.topic}:${batch.partition}`;
        // A rejoin makes the stream fetch again from the committed offset: what this member
        // already handled (and committed) may come twice.
        const done = handledUpTo.get(key) ?? -1n;
        const fresh = batch.messages.filter((m) => BigInt(m.offset) >= done);
        if (fresh.length === 0) continue;
        const last = fresh[fresh.length - 1]!;
        await options.handler({ ...batch, messages: fresh });
        const offset = nextOffset(last.offset);
        const started = performance.now();
        try {
          await consumer.commit({
            offsets: [
              {
                topic: batch.topic,
                partition: batch.partition,
                offset: BigInt(offset),
                leaderEpoch: epochs.get(last)!,
              },
            ],
          });
        } catch (error) {
          // The partition moved: its next owner redelivers the batch.
          if (findErrorBy(error as Error, 'needsRejoin', true)) continue;
          throw error;
        }
        handledUpTo.set(key, BigInt(offset));
        options.onCommit?.({ topic: batch.topic, partition: batch.partition, offset, ms: performance.now() - started });
      }
    }
  }

  return {
    stopped,
    async start() {
      const s = await consumer.consume({
        topics: options.topics,
        autocommit: false,
        mode: 'committed',
        fallbackMode: options.fromBeginning ? 'earliest' : 'latest',
      });
      stream = s;
      s.on('data', (m: Message) => {
        const done = handledUpTo.get(`${m.topic}:${m.partition}`);
        if (done !== undefined && m.offset < done) return;
        buffer.push({ message: toInMessage(m), leaderEpoch: m.leaderEpoch });
        if (buffer.length >= BUFFER_HIGH) s.pause();
        signal();
      });
      s.on('error', (error: Error) => {
        if (!leaving) settle.reject(error);
      });
      looping = loop(s).catch((error: unknown) => {
        settle.reject(error);
        leaving = true;
        void s
          .close()
          .then(() => consumer.close())
          .catch(() => undefined);
      });
    },
    async leave() {
      leaving = true;
      signal();
      await looping;
      await stream?.close();
      await consumer.close();
      settle.resolve();
    },
  };
}
