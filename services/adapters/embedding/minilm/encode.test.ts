import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SEP_ID, lengthBatches, meanPool, pack, truncate } from './encode.ts';

describe('minilm encoding (pure)', () => {
  it('truncates to maxTokens, keeping [CLS], the first pieces and a closing [SEP]', () => {
    const ids = [101, 1, 2, 3, 4, 5, 102];
    assert.deepEqual(truncate(ids, 7), { ids, truncated: false });
    assert.deepEqual(truncate(ids, 5), { ids: [101, 1, 2, 3, SEP_ID], truncated: true });
  });

  it('pads a batch to its longest input with mask 0 and token types 0', () => {
    const p = pack([
      [101, 7, 102],
      [101, 102],
    ]);
    assert.equal(p.batch, 2);
    assert.equal(p.length, 3);
    assert.deepEqual([...p.inputIds], [101n, 7n, 102n, 101n, 102n, 0n]);
    assert.deepEqual([...p.attentionMask], [1n, 1n, 1n, 1n, 1n, 0n]);
    assert.deepEqual([...p.tokenTypeIds], [0n, 0n, 0n, 0n, 0n, 0n]);
  });

  it('mean-pools under the mask and scales to unit length', () => {
    const p = pack([[1, 2], [3]]);
    // dims 2; second sequence's padded token carries garbage that must be ignored
    const hidden = Float32Array.from([3, 0, 1, 4, /* seq 2 */ 0, 5, 100, 100]);
    const [a, b] = meanPool(hidden, p, 2);
    // mean of (3,0) and (1,4) = (2,2) → (0.7071, 0.7071)
    assert.ok(Math.abs(a![0]! - Math.SQRT1_2) < 1e-6 && Math.abs(a![1]! - Math.SQRT1_2) < 1e-6, String(a));
    assert.deepEqual([...b!], [0, 1]);
    assert.throws(() => meanPool(new Float32Array(3), p, 2), RangeError);
  });

  it('batches by length and covers every index exactly once', () => {
    const lengths = [9, 3, 7, 3, 12, 1, 5];
    const batches = lengthBatches(lengths, 3);
    assert.deepEqual(batches, [[5, 1, 3], [6, 2, 0], [4]]);
    assert.deepEqual(batches.flat().sort(), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(lengthBatches([], 4), []);
  });
});
