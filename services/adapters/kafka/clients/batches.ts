/** Pure helpers shared by the client implementations (tested without a broker). */
import type { InMessage } from '../message.ts';
import type { MemberBatch } from './types.ts';

/**
 * Cuts messages as a client delivered them (partitions interleaved, each partition in offset
 * order) into batches of one partition and at most `maxBatch` messages. Batches come in the order
 * their partition first appears, and a partition's batches keep its offset order.
 */
export function sliceBatches(messages: readonly InMessage[], maxBatch: number): MemberBatch[] {
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  const byPartition = new Map<string, InMessage[]>();
  for (const m of messages) {
    const key = `${m.topic}\u0000${m.partition}`;
    let list = byPartition.get(key);
    if (!list) byPartition.set(key, (list = []));
    list.push(m);
  }
  const batches: MemberBatch[] = [];
  for (const list of byPartition.values()) {
    for (let i = 0; i < list.length; i += maxBatch) {
      const slice = list.slice(i, i + maxBatch);
      batches.push({ topic: slice[0]!.topic, partition: slice[0]!.partition, messages: slice });
    }
  }
  return batches;
}

/** The offset to commit after `offset` was processed (Kafka commits the next offset to read). */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}
