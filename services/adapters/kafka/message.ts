/**
 * Client-neutral message shapes. Services and handlers only see these, so the Kafka client
 * (kafkajs today) can be replaced by changing services/kafka alone.
 */
export interface InMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** Broker timestamp, ms since epoch. */
  timestamp: number;
}

export interface OutMessage {
  key: string | null;
  value: Buffer | string | null;
  headers?: Record<string, string>;
}

/**
 * What happened to one message of a batch. `done` covers both applied and skipped-by-guard;
 * `dead` sends the original message to the service's dead-letter topic with the error's reason.
 */
export type Outcome = { kind: 'done'; result?: 'applied' | 'skipped' } | { kind: 'dead'; error: unknown };

export const done: Outcome = { kind: 'done', result: 'applied' };
export const skipped: Outcome = { kind: 'done', result: 'skipped' };

/** Standard headers vecsync carries along a document's path. */
export const HEADER = {
  outboxId: 'outbox_id',
  lane: 'lane',
  createdAt: 'created_at',
  traceId: 'trace_id',
} as const;

/** Outbox created_at of a message in ms since epoch (header written by the outbox router), if any. */
export function createdAtMs(message: InMessage): number | undefined {
  const raw = message.headers[HEADER.createdAt];
  if (!raw) return undefined;
  // Debezium places timestamptz columns as ISO strings or epoch micros, depending on settings.
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    return n > 1e14 ? Math.floor(n / 1000) : n;
  }
  const parsed = Date.parse(raw);
  return Number.isNaN(parsed) ? undefined : parsed;
}
