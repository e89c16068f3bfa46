import { CompressionTypes, Partitioners, type Producer as KafkaProducer } from 'kafkajs';
import { CredentialsError, PoisonMessageError, RetriableError, describeError } from '../../domain/errors.ts';
import type { Kafka } from './client.ts';
import type { OutMessage } from './message.ts';

/** An idempotent producer that resolves only when every message is acknowledged by all replicas. */
export interface Producer {
  send(topic: string, messages: OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Largest produce request this producer builds: messages are grouped so that one request stays
 * below it (one message larger than this goes alone). Far below the broker's
 * `socket.request.max.bytes` (100 MiB), and small enough that a batch of long documents at 1,536
 * dimensions never becomes one record batch over its topic's `max.message.bytes`.
 */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** Protocol errors a retry cannot fix: the record (or batch) is over a limit or malformed. */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'INVALID_REQUEST']);
/** The broker refused our identity or permissions: pause, never dead-letter. */
const AUTH = new Set(['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'SASL_AUTHENTICATION_FAILED']);

/** The kafkajs error `type` (e.g. MESSAGE_TOO_LARGE) anywhere along the cause chain. */
export function kafkaErrorType(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 6; depth++) {
    const { type, originalError, cause } = e as { type?: unknown; originalError?: unknown; cause?: unknown };
    if (typeof type === 'string') return type;
    e = originalError ?? cause;
  }
  return undefined;
}

/** Maps a failed send to the error hierarchy (classify reads the result). */
export function producerError(topic: string, error: unknown): Error {
  const type = kafkaErrorType(error);
  const detail = `producing to ${topic} failed: ${describeError(error)}`;
  if (type !== undefined && TOO_LARGE.has(type))
    return new PoisonMessageError('record_too_large', detail, { cause: error });
  if (type !== undefined && AUTH.has(type)) return new CredentialsError('kafka', 'forbidden', detail, { cause: error });
  return new RetriableError(detail, { cause: error });
}

function sizeOf(m: OutMessage): number {
  const value = m.value === null ? 0 : typeof m.value === 'string' ? Buffer.byteLength(m.value) : m.value.length;
  let headers = 0;
  for (const [k, v] of Object.entries(m.headers ?? {})) headers += k.length + Buffer.byteLength(v);
  return value + headers + (m.key?.length ?? 0) + 64;
}

/** Consecutive groups of messages, each at most `maxBytes` (a larger message is a group alone). */
export function groupBySize(messages: OutMessage[], maxBytes: number): OutMessage[][] {
  const groups: OutMessage[][] = [];
  let current: OutMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = sizeOf(m);
    if (current.length > 0 && bytes + size > maxBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

export async function createProducer(kafka: Kafka): Promise<Producer> {
  // Not kafkajs' idempotent mode: it wants unbounded retries, and a send must fail (retriably)
  // during a broker outage so the runner can back off. One request in flight keeps per-key order;
  // a duplicate after a retried send is harmless because the ledger makes every apply idempotent.
  const producer: KafkaProducer = kafka.producer({
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // The Java client's murmur2 partitioning, as Debezium uses: one key, one partition everywhere.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();

  async function sendGroup(topic: string, messages: OutMessage[]): Promise<void> {
    try {
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
      });
    } catch (error) {
      const mapped = producerError(topic, error);
      // Too large as a batch need not mean too large alone: split, and only a single message that
      // is still too large is poison (the runner dead-letters the input that produced it).
      if (mapped instanceof PoisonMessageError && messages.length > 1) {
        const half = Math.ceil(messages.length / 2);
        await sendGroup(topic, messages.slice(0, half));
        await sendGroup(topic, messages.slice(half));
        return;
      }
      throw mapped;
    }
  }

  return {
    async send(topic, messages) {
      for (const group of groupBySize(messages, MAX_REQUEST_BYTES)) await sendGroup(topic, group);
    },
    close: () => producer.disconnect(),
  };
}
