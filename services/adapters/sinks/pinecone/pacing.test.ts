import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapBounded, Pacer, valuesOrThrow } from './pacing.ts';

describe('pinecone pacing', () => {
  it('runs at most `limit` calls at once and keeps input order', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapBounded(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (i) => {
        most = Math.max(most, ++inFlight);
        await sleep(5 + (i % 4));
        inFlight--;
        return i * 2;
      },
    );
    assert.equal(most, 3);
    assert.deepEqual(
      valuesOrThrow(results),
      Array.from({ length: 20 }, (_, i) => i * 2),
    );
  });

  it('stops starting new calls after a fatal failure; those report it', async () => {
    const started: number[] = [];
    const results = await mapBounded(
      [0, 1, 2, 3, 4, 5],
      1,
      async (i) => {
        started.push(i);
        if (i === 2) throw new Error('down');
        return i;
      },
      () => true,
    );
    assert.deepEqual(started, [0, 1, 2]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected', 'rejected'],
    );
    assert.throws(() => valuesOrThrow(results), /down/);
  });

  it('paces calls per key, not across keys', async () => {
    const pacer = new Pacer(100);
    const started = performance.now();
    await Promise.all(Array.from({ length: 6 }, () => pacer.acquire('ns-a')));
    assert.ok(performance.now() - started >= 45, 'six calls at 100/s take 50 ms');
    const other = performance.now();
    await pacer.acquire('ns-b');
    assert.ok(performance.now() - other < 20, 'another namespace does not wait');
  });
});
