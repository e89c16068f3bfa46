/**
 * Dead-letter tooling: list what was dead-lettered and why, and put dead letters back on the topic
 * they came from once their cause is fixed. Replays are recorded in `vecsync.dlq_replays`, so a
 * second `replay --all` puts nothing back twice; a replayed event applied twice would be a no-op
 * anyway (the ledger), this only keeps the topics clean.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { ConfigError } from '../../domain/errors.ts';
import type { Kafka } from '../../adapters/kafka/client.ts';
import { readCompactedToEnd, readMessageAt } from '../../adapters/kafka/compacted.ts';
import { DLQ_HEADER } from '../../adapters/kafka/dlq.ts';
import type { Producer } from '../../adapters/kafka/producer.ts';
import { SERVICES, type ServiceName, type Topics } from '../../adapters/kafka/topics.ts';

export interface DeadLetterItem {
  /** `<service>:<partition>:<offset>` in the service's DLQ topic. */
  id: string;
  service: ServiceName;
  key: string | null;
  reason: string;
  error: string;
  group: string;
  original_topic: string;
  original_partition: number;
  original_offset: string;
  attempts: number;
  first_failure: string;
  last_failure: string;
  replayed: boolean;
  /** Set when the DLQ holds a reference only (the value was too large for it): the value's size. */
  value_omitted_bytes?: number;
}

export interface DeadLetterReport {
  total: number;
  by_service: Record<string, number>;
  by_reason: Record<string, number>;
  items: DeadLetterItem[];
}

interface Letter {
  item: DeadLetterItem;
  dlqTopic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export interface DlqFilter {
  service?: ServiceName;
  /** Only dead letters whose key starts with `<tenant>:`. */
  tenant?: string;
  reason?: string;
  /** Include dead letters already replayed (default: only those still pending). */
  includeReplayed?: boolean;
}

export function parseDeadLetterId(id: string): { service: ServiceName; partition: number; offset: string } {
  const m = /^([a-z]+):(\d+):(\d+)$/.exec(id);
  if (!m || !SERVICES.includes(m[1] as ServiceName)) {
    throw new ConfigError(
      `invalid dead letter id ${JSON.stringify(id)}: expected <service>:<partition>:<offset> (see vecsync dlq list)`,
    );
  }
  return { service: m[1] as ServiceName, partition: Number(m[2]), offset: m[3]! };
}

/** The original message's headers, without the dead-letter ones. */
export function originalHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith('vecsync.dlq.')));
}

async function replayedSet(pool: pg.Pool): Promise<Set<string>> {
  const res = await pool.query<{ t: string; p: number; o: string }>(
    'SELECT dlq_topic AS t, dlq_partition AS p, dlq_offset AS o FROM vecsync.dlq_replays',
  );
  return new Set(res.rows.map((r) => `${r.t}/${r.p}/${r.o}`));
}

async function readLetters(kafka: Kafka, pool: pg.Pool, topics: Topics, filter: DlqFilter): Promise<Letter[]> {
  const replayed = await replayedSet(pool);
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  await admin.disconnect();
  const letters: Letter[] = [];
  for (const service of filter.service ? [filter.service] : SERVICES) {
    const dlqTopic = topics.dlq(service);
    if (!existing.has(dlqTopic)) continue;
    await readCompactedToEnd(
      kafka,
      dlqTopic,
      (m) => {
        const key = m.key?.toString('utf8') ?? null;
        if (filter.tenant && !key?.startsWith(`${filter.tenant}:`)) return;
        const h = m.headers;
        const reason = h[DLQ_HEADER.reason] ?? 'unknown';
        if (filter.reason && reason !== filter.reason) return;
        const isReplayed = replayed.has(`${dlqTopic}/${m.partition}/${m.offset}`);
        if (isReplayed && !filter.includeReplayed) return;
        letters.push({
          dlqTopic,
          partition: m.partition,
          offset: m.offset,
          key: m.key,
          value: m.value,
          headers: h,
          item: {
            id: `${service}:${m.partition}:${m.offset}`,
            service,
            key,
            reason,
            error: h[DLQ_HEADER.error] ?? '',
            group: h[DLQ_HEADER.group] ?? '',
            original_topic: h[DLQ_HEADER.topic] ?? '',
            original_partition: Number(h[DLQ_HEADER.partition] ?? -1),
            original_offset: h[DLQ_HEADER.offset] ?? '',
            attempts: Number(h[DLQ_HEADER.attempts] ?? 0),
            first_failure: h[DLQ_HEADER.firstFailure] ?? '',
            last_failure: h[DLQ_HEADER.lastFailure] ?? '',
            replayed: isReplayed,
            ...(h[DLQ_HEADER.valueOmitted] ? { value_omitted_bytes: Number(h[DLQ_HEADER.valueOmitted]) } : {}),
          },
        });
      },
      { groupId: `vecsync-dlq-read.${randomBytes(6).toString('hex')}` },
    );
  }
  return letters;
}

export async function listDeadLetters(
  kafka: Kafka,
  pool: pg.Pool,
  topics: Topics,
  filter: DlqFilter,
  limit = 100,
): Promise<DeadLetterReport> {
  const letters = await readLetters(kafka, pool, topics, filter);
  const report: DeadLetterReport = { total: letters.length, by_service: {}, by_reason: {}, items: [] };
  for (const { item } of letters) {
    report.by_service[item.service] = (report.by_service[item.service] ?? 0) + 1;
    report.by_reason[item.reason] = (report.by_reason[item.reason] ?? 0) + 1;
  }
  report.items = letters.slice(-limit).map((l) => l.item);
  return report;
}

/**
 * The value of a dead letter stored as a reference, read back from the original topic (which keeps
 * it until its retention ends). Gone from there, the event cannot be replayed: the reconciler
 * re-enqueues the document from the source instead.
 */
async function referencedValue(kafka: Kafka, letter: Letter): Promise<Buffer | null> {
  const { id, original_topic: topic, original_partition: partition, original_offset: offset, key } = letter.item;
  const original = await readMessageAt(kafka, topic, partition, offset, {
    groupId: `vecsync-dlq-read.${randomBytes(6).toString('hex')}`,
  });
  if (!original) {
    const tenant = key?.split(':')[0];
    throw new ConfigError(
      `dead letter ${id} holds a reference to ${topic} partition ${partition} offset ${offset} (its value of ` +
        `${letter.item.value_omitted_bytes} bytes did not fit the DLQ topic), and that topic no longer holds it; ` +
        `re-enqueue the document from the source instead: vecsync reconcile --repair${tenant ? ` --tenant ${tenant}` : ''}`,
    );
  }
  return original.value;
}

/**
 * Puts pending dead letters back on their original topics (original key, value and headers) and
 * records them as replayed. `ids` selects some; otherwise every pending one that matches `filter`.
 */
export async function replayDeadLetters(
  kafka: Kafka,
  pool: pg.Pool,
  producer: Producer,
  topics: Topics,
  filter: DlqFilter,
  ids?: string[],
): Promise<{ replayed: number; alreadyReplayed: number }> {
  const wanted = ids?.map(parseDeadLetterId);
  const services = wanted
    ? [...new Set(wanted.map((w) => w.service))]
    : filter.service
      ? [filter.service]
      : [...SERVICES];
  let replayed = 0;
  let alreadyReplayed = 0;
  for (const service of services) {
    const letters = await readLetters(kafka, pool, topics, { ...filter, service, includeReplayed: true });
    const chosen = wanted
      ? letters.filter((l) =>
          wanted.some((w) => w.service === service && w.partition === l.partition && w.offset === l.offset),
        )
      : letters;
    if (wanted) {
      const missing = wanted.filter(
        (w) => w.service === service && !chosen.some((l) => l.partition === w.partition && l.offset === w.offset),
      );
      if (missing.length > 0)
        throw new ConfigError(`no dead letter ${service}:${missing[0]!.partition}:${missing[0]!.offset}`);
    }
    for (const letter of chosen) {
      if (letter.item.replayed) {
        alreadyReplayed++;
        continue;
      }
      const target = letter.item.original_topic;
      if (!target) throw new ConfigError(`dead letter ${letter.item.id} does not name its original topic`);
      const value = letter.item.value_omitted_bytes === undefined ? letter.value : await referencedValue(kafka, letter);
      await producer.send(target, [
        { key: letter.key?.toString('utf8') ?? null, value, headers: originalHeaders(letter.headers) },
      ]);
      await pool.query(
        `INSERT INTO vecsync.dlq_replays (dlq_topic, dlq_partition, dlq_offset, replayed_to) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING`,
        [letter.dlqTopic, letter.partition, letter.offset, target],
      );
      replayed++;
    }
  }
  return { replayed, alreadyReplayed };
}
