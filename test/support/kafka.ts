/**
 * Reading topics in tests: from the beginning, with a consumer group of its own, returning the raw
 * messages (key, value and headers as bytes) so a test can assert on exactly what was published.
 */
import kafkajs from 'kafkajs';
import type { Admin, Consumer, Kafka as KafkaClient } from 'kafkajs';
import { uniqueId } from './ids.ts';

const { Kafka, logLevel } = kafkajs;

export interface RawMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | undefined>;
}

export function kafkaClient(brokers: string[], clientId = 'vecsync-test'): KafkaClient {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.ERROR,
    logCreator:
      () =>
      ({ namespace, log }) =>
        process.stderr.write(`kafkajs ${namespace}: ${log.message}\n`),
    retry: { retries: 3, initialRetryTime: 100 },
  });
}

export async function withAdmin<T>(brokers: string[], fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient(brokers, 'vecsync-test-admin').admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Fails (never skips) when no broker answers a metadata request. */
export async function assertKafkaReachable(brokers: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await withAdmin(brokers, (admin) => admin.listTopics());
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  throw new Error(`Kafka is not reachable at ${brokers.join(',')}: ${(last as Error)?.message ?? 'timeout'}`);
}

export async function topicsWithPrefix(brokers: string[], prefix: string): Promise<string[]> {
  return (await withAdmin(brokers, (admin) => admin.listTopics())).filter((t) => t.startsWith(prefix)).sort();
}

export interface ConsumeOptions {
  brokers: string[];
  topics: string[];
  /** Default: a unique group, deleted afterwards. */
  groupId?: string;
  timeoutMs?: number;
  /** Only messages for which this returns true are collected (and passed to `until`). */
  keep?: (message: RawMessage) => boolean;
}

/**
 * Consumes `topics` from the beginning until `until(collected)` is true; returns the collected
 * messages. Rejects at the timeout, saying how many messages it had collected.
 */
export async function consumeUntil(
  options: ConsumeOptions & { until: (collected: RawMessage[]) => boolean },
): Promise<RawMessage[]> {
  return consume(options, options.until, undefined);
}

/**
 * Consumes `topics` from the beginning up to their end as of the call (the high watermark of
 * every partition), and returns every message.
 */
export async function readToEnd(options: ConsumeOptions): Promise<RawMessage[]> {
  const targets = new Map<string, bigint>();
  await withAdmin(options.brokers, async (admin) => {
    for (const topic of options.topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        if (BigInt(p.high) > BigInt(p.low)) targets.set(`${topic}/${p.partition}`, BigInt(p.high));
      }
    }
  });
  return consume(options, undefined, targets);
}

async function consume(
  options: ConsumeOptions,
  until: ((collected: RawMessage[]) => boolean) | undefined,
  targets: Map<string, bigint> | undefined,
): Promise<RawMessage[]> {
  const collected: RawMessage[] = [];
  if (targets && targets.size === 0) return collected;
  const ownGroup = options.groupId === undefined;
  const groupId = options.groupId ?? `vecsync-test.${uniqueId('consume')}`;
  const kafka = kafkaClient(options.brokers);
  const consumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, retry: { retries: 3 } });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const keep = options.keep ?? (() => true);
  const remaining = new Map(targets ?? []);

  let settle!: (error?: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  const timer = setTimeout(() => {
    const what = until ? 'the expected messages' : `the end of ${[...remaining.keys()].join(', ')}`;
    settle(
      new Error(
        `timed out after ${timeoutMs} ms consuming ${options.topics.join(', ')} for ${what} (collected ${collected.length})`,
      ),
    );
  }, timeoutMs);

  try {
    await consumer.connect();
    await consumer.subscribe({ topics: options.topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const raw: RawMessage = {
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
            headers: Object.fromEntries(
              Object.entries(m.headers ?? {}).map(([k, v]) => [
                k,
                Array.isArray(v) ? (v[0] as Buffer) : (v as Buffer | undefined),
              ]),
            ),
          };
          if (keep(raw)) collected.push(raw);
        }
        if (until && until(collected)) settle();
        const slot = `${batch.topic}/${batch.partition}`;
        const target = remaining.get(slot);
        if (target !== undefined && batch.messages.length > 0 && BigInt(batch.lastOffset()) + 1n >= target) {
          remaining.delete(slot);
          if (remaining.size === 0) settle();
        }
      },
    });
    await done;
    return collected;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    if (ownGroup) {
      await withAdmin(options.brokers, (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
    }
  }
}

export function keyOf(m: RawMessage): string | null {
  return m.key === null ? null : m.key.toString('utf8');
}

export function headerOf(m: RawMessage, name: string): string | undefined {
  return m.headers[name]?.toString('utf8');
}

/** The JSON value; a string value holding JSON (the router's fallback) is decoded too. */
export function jsonOf(m: RawMessage): unknown {
  if (m.value === null) return null;
  const v = JSON.parse(m.value.toString('utf8')) as unknown;
  return typeof v === 'string' && /^[[{]/.test(v) ? JSON.parse(v) : v;
}
