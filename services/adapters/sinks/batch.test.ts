import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeIsolated, type IsolationPlan } from './batch.ts';

class DataError extends Error {}
class DownError extends Error {}

function plan(bad: Set<number>, down = new Set<number>()): IsolationPlan<number> & { calls: number[][] } {
  const calls: number[][] = [];
  return {
    calls,
    async runBatch(items) {
      calls.push(items);
      const d = items.find((i) => down.has(i));
      if (d !== undefined) throw new DownError(`down at ${d}`);
      if (items.some((i) => bad.has(i))) throw new DataError('bad item');
    },
    async runOne(item) {
      calls.push([item]);
      if (down.has(item)) throw new DownError(`down at ${item}`);
      if (bad.has(item)) throw new DataError(`bad ${item}`);
    },
    isItemError: (e) => e instanceof DataError,
    toItemError: (e) => e,
  };
}

describe('writeIsolated', () => {
  it('one request when the batch succeeds', async () => {
    const p = plan(new Set());
    assert.deepEqual(await writeIsolated([1, 2, 3], p), [{ ok: true }, { ok: true }, { ok: true }]);
    assert.deepEqual(p.calls, [[1, 2, 3]]);
    assert.deepEqual(await writeIsolated([], p), []);
  });

  it('a data error fails only the bad item', async () => {
    const p = plan(new Set([2]));
    const results = await writeIsolated([1, 2, 3], p);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, false, true],
    );
    assert.match(String((results[1] as { error: unknown }).error), /bad 2/);
    assert.deepEqual(p.calls, [[1, 2, 3], [1], [2], [3]]);
  });

  it('an unavailable store fails every item, without per-item retries', async () => {
    const p = plan(new Set(), new Set([1]));
    const results = await writeIsolated([1, 2, 3], p);
    assert.ok(results.every((r) => !r.ok && r.error instanceof DownError));
    assert.deepEqual(p.calls, [[1, 2, 3]]);
  });

  it('a store lost during isolation fails the rest without more round trips', async () => {
    const p = plan(new Set([1]), new Set([3]));
    // The batch fails on data (1 is bad) only if 3 is not seen first: order the batch so it is.
    p.runBatch = async (items) => {
      p.calls.push(items);
      throw new DataError('bad item');
    };
    const results = await writeIsolated([1, 2, 3, 4], p);
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : (r.error as Error).constructor.name)),
      ['DataError', 'ok', 'DownError', 'DownError'],
    );
    assert.deepEqual(p.calls, [[1, 2, 3, 4], [1], [2], [3]]);
  });
});
