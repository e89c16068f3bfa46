/** The kafkajs side of the adapter: client construction and log bridging. */
import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '../telemetry/log.ts';

export type { Kafka };

/**
 * Consumer group timing. A member that dies (SIGKILL) keeps its partitions until the broker's
 * session timeout expires; the others learn of the rebalance at their next heartbeat. 6 s is the
 * broker's smallest allowed session (`group.min.session.timeout.ms` default), so a dead member's
 * partitions move within about 6 s + one heartbeat + the rejoin. kafkajs has no static membership.
 * The runner heartbeats while a slice runs, so a long slice does not count as a dead member.
 */
export const CONSUMER_SETTINGS = {
  sessionTimeout: 6_000,
  heartbeatInterval: 1_000,
  /** How long the broker waits for every member to rejoin a rebalance. */
  rebalanceTimeout: 30_000,
} as const;

/** Fetch settings of every consumer loop (the runner, and each client in clients/). */
export const FETCH_SETTINGS = {
  /** How long the broker holds a fetch that has nothing to return yet. */
  maxWaitMs: 100,
  /** Chunk records of long documents are megabytes; a fetch must be able to hold one. */
  maxBytesPerPartition: 16 * 1024 * 1024,
} as const;

/** Retries of every request, with the first delay; each client maps them to its own option names. */
export const REQUEST_RETRY = { retries: 8, initialDelayMs: 200 } as const;

/** Kafka's answers that mean this member no longer owns its partitions (a rebalance, or it was dropped). */
export function isLostAssignment(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return (
    type === 'REBALANCE_IN_PROGRESS' ||
    type === 'ILLEGAL_GENERATION' ||
    type === 'UNKNOWN_MEMBER_ID' ||
    type === 'NOT_COORDINATOR_FOR_GROUP' ||
    type === 'FENCED_INSTANCE_ID'
  );
}

/**
 * Answers kafkajs logs at ERROR although it retries them itself and they end well: leadership
 * moving (the first ListOffsets after a topic is created), a rebalance, a coordinator moving or
 * loading. They are debug lines, not errors an operator should act on.
 */
const BENIGN_BROKER_ANSWERS = [
  'not the leader for that topic-partition',
  'no leader for this topic-partition',
  'does not host this topic-partition',
  'group is rebalancing',
  'coordinator is not aware of this member',
  'group generation id is not valid',
  'coordinator is loading',
  'coordinator is not available',
  'not the correct coordinator',
  // CreateTopics refused, mostly "already exists" when two services provision the same topic at
  // once; provisionTopics (admin.ts) handles the answer and throws anything else to its caller.
  'Topic creation errors',
];

/** The level a kafkajs log line deserves in vecsync's logs. */
export function clientLogLevel(
  level: number,
  entry: { message?: unknown; error?: unknown; stack?: unknown },
): 'error' | 'warn' | 'debug' {
  const error = typeof entry.error === 'string' ? entry.error : '';
  if (BENIGN_BROKER_ANSWERS.some((answer) => error.includes(answer))) return 'debug';
  // A slice abandoned at the end of a stop's grace period (services/adapters/kafka/runner.ts).
  if (typeof entry.stack === 'string' && entry.stack.startsWith('RunnerStopping')) return 'debug';
  if (level <= logLevel.ERROR) return 'error';
  if (level === logLevel.WARN) return 'warn';
  return 'debug';
}

export function createKafka(brokers: string[], clientId: string, log: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: REQUEST_RETRY.initialDelayMs, retries: REQUEST_RETRY.retries },
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[clientLogLevel(level, entry)](rest, `kafka: ${message}`);
      },
  });
}

/** One metadata request with short timeouts and no retries or logs: is a broker answering? */
export async function describeCluster(
  brokers: string[],
): Promise<Awaited<ReturnType<ReturnType<Kafka['admin']>['describeCluster']>>> {
  const kafka = new Kafka({
    clientId: 'vecsync-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await admin.describeCluster();
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export function headersToStrings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined || v === null) continue;
    const first = Array.isArray(v) ? v[0] : v;
    out[k] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}
