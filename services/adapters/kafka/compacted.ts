/**
 * Reading a compacted topic (the state topic) from its beginning up to its end as of the call: the
 * high watermark of every partition, fetched once at the start. Later messages are not delivered,
 * so the caller gets one consistent cut of the log.
 *
 * kafkajs has no manual partition assignment, so the read uses a consumer group of its own (the
 * caller names it; it must be fresh) that never commits, and deletes the group afterwards.
 * Partitions whose tail is made of control records or compacted-away offsets are detected through
 * kafkajs' batch events, which report progress even for batches with nothing to hand over.
 */
import kafkajs from 'kafkajs';
import { RetriableError } from '../../domain/errors.ts';
import { headersToStrings, type Kafka } from './client.ts';

export interface CompactedMessage {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export interface ReadToEndOptions {
  /** A consumer group used by this read only (deleted afterwards). */
  groupId: string;
  signal?: AbortSignal;
  /** Fail (retriably) when no partition moves forward for this long. Default 60 s. */
  stallMs?: number;
}

export interface ReadToEndResult {
  /** Messages handed to `onMessage`. */
  messages: number;
  partitions: number;
}

/**
 * Calls `onMessage` for every message of `topic` below each partition's high watermark at the
 * start, partition order preserved (partitions interleave). `onMessage` is synchronous on purpose:
 * the caller folds messages into memory; I/O per message would not keep up with a topic read.
 */
export async function readCompactedToEnd(
  kafka: Kafka,
  topic: string,
  onMessage: (message: CompactedMessage) => void,
  options: ReadToEndOptions,
): Promise<ReadToEndResult> {
  const admin = kafka.admin();
  const remaining = new Map<number, bigint>();
  let partitions = 0;
  try {
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    partitions = offsets.length;
    for (const p of offsets) if (BigInt(p.high) > BigInt(p.low)) remaining.set(p.partition, BigInt(p.high));
  } catch (error) {
    await admin.disconnect().catch(() => undefined);
    throw new RetriableError(`reading ${topic}: ${(error as Error).message}`, { cause: error });
  }
  let messages = 0;
  if (remaining.size === 0) {
    await admin.disconnect().catch(() => undefined);
    return { messages, partitions };
  }

  const consumer = kafka.consumer({
    groupId: options.groupId,
    maxWaitTimeInMs: 50,
    // Measured on the state topic: larger fetches read no faster, they only raise peak memory (a
    // message larger than this is still returned alone, so nothing gets stuck). Halving them from
    // 1 MiB / 8 MiB lowered the peak RSS of a 1M-key reconcile pass by about 30 MiB (bench/reconcile.ts).
    maxBytesPerPartition: 512 * 1024,
    maxBytes: 4 * 1024 * 1024,
    allowAutoTopicCreation: false,
  });
  const { END_BATCH_PROCESS, CRASH } = consumer.events;
  let settle!: (error?: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  let lastProgress = Date.now();
  const advance = (partition: number, lastOffset: string | null | undefined) => {
    const target = remaining.get(partition);
    if (target === undefined || lastOffset === null || lastOffset === undefined) return;
    lastProgress = Date.now();
    if (BigInt(lastOffset) + 1n >= target) {
      remaining.delete(partition);
      if (remaining.size === 0) settle();
    }
  };
  consumer.on(END_BATCH_PROCESS, (event) => advance(event.payload.partition, event.payload.lastOffset));
  consumer.on(CRASH, (event) => settle(event.payload.error));
  const stallMs = options.stallMs ?? 60_000;
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress > stallMs) {
      settle(
        new RetriableError(
          `reading ${topic}: no progress for ${stallMs} ms (partitions left: ${[...remaining.keys()]})`,
        ),
      );
    }
  }, 1_000);
  const onAbort = () => settle(options.signal?.reason ?? new Error('aborted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const target = remaining.get(batch.partition);
        if (target === undefined) return;
        const all = BigInt(batch.lastOffset()) < target;
        for (const m of batch.messages) {
          if (!all && BigInt(m.offset) >= target) break;
          messages++;
          onMessage({
            partition: batch.partition,
            offset: m.offset,
            key: m.key,
            value: m.value,
            headers: headersToStrings(m.headers as Record<string, unknown>),
          });
        }
      },
    });
    await finished;
    return { messages, partitions };
  } catch (error) {
    if (error instanceof RetriableError || options.signal?.aborted) throw error;
    if (error instanceof kafkajs.KafkaJSError) {
      throw new RetriableError(`reading ${topic}: ${error.message}`, { cause: error });
    }
    throw error;
  } finally {
    clearInterval(watchdog);
    options.signal?.removeEventListener('abort', onAbort);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([options.groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * The one message at `offset` of `topic`/`partition`, or `undefined` when the log no longer holds
 * it (retention deleted it, or compaction removed it). Used to replay a dead letter stored as a
 * reference (its value was too large for the DLQ topic): the original is read back from where it
 * came from. Same fresh-group approach as `readCompactedToEnd`: the group is placed at `offset`
 * on that partition (and at the end of every other one) before it joins, and deleted afterwards.
 */
export async function readMessageAt(
  kafka: Kafka,
  topic: string,
  partition: number,
  offset: string,
  options: { groupId: string; timeoutMs?: number },
): Promise<CompactedMessage | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  const consumer = kafka.consumer({
    groupId: options.groupId,
    maxWaitTimeInMs: 50,
    // A referenced value is larger than the DLQ topic allows: fetch it whole.
    maxBytesPerPartition: 64 * 1024 * 1024,
    allowAutoTopicCreation: false,
  });
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const target = offsets.find((p) => p.partition === partition);
    if (!target) throw new RangeError(`${topic} has no partition ${partition}`);
    const wanted = BigInt(offset);
    if (wanted < BigInt(target.low) || wanted >= BigInt(target.high)) return undefined;
    await admin.setOffsets({
      groupId: options.groupId,
      topic,
      partitions: offsets.map((p) => ({ partition: p.partition, offset: p.partition === partition ? offset : p.high })),
    });
    let settle!: (m: CompactedMessage | undefined) => void;
    const found = new Promise<CompactedMessage | undefined>((resolve) => (settle = resolve));
    const timer = setTimeout(() => settle(undefined), options.timeoutMs ?? 30_000);
    consumer.on(consumer.events.CRASH, () => settle(undefined));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.partition !== partition) return;
        const m = batch.messages.find((x) => BigInt(x.offset) === wanted);
        if (m) {
          settle({
            partition,
            offset: m.offset,
            key: m.key,
            value: m.value,
            headers: headersToStrings(m.headers as Record<string, unknown>),
          });
        } else if (BigInt(batch.lastOffset()) >= wanted) {
          settle(undefined); // compaction removed it: the log went past it without it
        }
      },
    });
    const message = await found;
    clearTimeout(timer);
    return message;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([options.groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
