import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InMessage } from '../message.ts';
import { nextOffset, sliceBatches } from './batches.ts';

const m = (partition: number, offset: number, topic = 't'): InMessage => ({
  topic,
  partition,
  offset: String(offset),
  key: `k${offset}`,
  value: null,
  headers: {},
  timestamp: 0,
});

describe('sliceBatches', () => {
  it('groups interleaved partitions, keeping each partition in offset order', () => {
    const batches = sliceBatches([m(1, 0), m(0, 0), m(1, 1), m(0, 1), m(1, 2)], 10);
    assert.deepEqual(
      batches.map((b) => [b.partition, b.messages.map((x) => x.offset)]),
      [
        [1, ['0', '1', '2']],
        [0, ['0', '1']],
      ],
    );
  });

  it('cuts a partition into batches of at most maxBatch', () => {
    const batches = sliceBatches(
      [0, 1, 2, 3, 4].map((o) => m(0, o)),
      2,
    );
    assert.deepEqual(
      batches.map((b) => b.messages.map((x) => x.offset)),
      [['0', '1'], ['2', '3'], ['4']],
    );
  });

  it('keeps the same partition number of two topics apart', () => {
    const batches = sliceBatches([m(0, 5, 'a'), m(0, 9, 'b')], 10);
    assert.deepEqual(
      batches.map((b) => [b.topic, b.partition, b.messages.length]),
      [
        ['a', 0, 1],
        ['b', 0, 1],
      ],
    );
  });

  it('gives no batch for no messages, and refuses a batch size below 1', () => {
    assert.deepEqual(sliceBatches([], 5), []);
    assert.throws(() => sliceBatches([m(0, 0)], 0), RangeError);
  });
});

describe('nextOffset', () => {
  it('is the offset after, beyond 2^53 too', () => {
    assert.equal(nextOffset('41'), '42');
    assert.equal(nextOffset('9007199254740993'), '9007199254740994');
  });
});
