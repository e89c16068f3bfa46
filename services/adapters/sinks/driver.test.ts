import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, PoisonMessageError, RetriableError } from '../../domain/errors.ts';
import { driveItems, type ItemDriver } from './driver.ts';
import type { ItemResult } from './types.ts';

interface Item {
  doc: string;
  n: number;
}

const dataError = new Error('bad row');
const isData = (e: unknown) => e === dataError;

function driver(overrides: Partial<ItemDriver<Item>> & { calls: Item[][] }): ItemDriver<Item> {
  const { calls, ...rest } = overrides;
  return {
    check: (item) => (item.n < 0 ? new PoisonMessageError('invalid_write', `${item.doc}: negative`) : null),
    keyOf: (item) => item.doc,
    write: async (items) => {
      calls.push(items);
    },
    isItemError: isData,
    ...rest,
  };
}

describe('per-item sink driver', () => {
  it('checks each item, writes the valid ones in one request, reports per item in input order', async () => {
    const calls: Item[][] = [];
    const items = [
      { doc: 'a', n: 1 },
      { doc: 'b', n: -1 },
      { doc: 'c', n: 2 },
    ];
    const results = await driveItems(items, async () => driver({ calls }));
    assert.deepEqual(calls, [[items[0], items[2]]]);
    assert.equal(results[0]!.ok, true);
    assert.ok(!results[1]!.ok && /b: negative/.test(String(results[1]!.error)));
    assert.equal(results[2]!.ok, true);
  });

  it('the same document twice goes in two waves, in order; a retriable failure stops the later wave', async () => {
    const calls: Item[][] = [];
    const items = [
      { doc: 'a', n: 1 },
      { doc: 'a', n: 2 },
      { doc: 'b', n: 3 },
    ];
    await driveItems(items, async () => driver({ calls }));
    assert.deepEqual(calls, [[items[0], items[2]], [items[1]]]);

    const outage = new RetriableError('down');
    let first = true;
    const results = await driveItems(items, async () =>
      driver({
        calls: [],
        write: async () => {
          if (first) {
            first = false;
            throw outage;
          }
        },
      }),
    );
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.error)),
      [outage, outage, outage],
    );
  });

  it('a data error isolates the bad item; the rest count as done', async () => {
    const calls: Item[][] = [];
    const items = [
      { doc: 'a', n: 1 },
      { doc: 'b', n: 13 },
      { doc: 'c', n: 2 },
    ];
    const results = await driveItems(items, async () =>
      driver({
        calls,
        write: async (batch) => {
          calls.push(batch);
          if (batch.some((i) => i.n === 13)) throw dataError;
        },
        toItemError: (e) => new PoisonMessageError('sink_rejected', String(e)),
      }),
    );
    assert.equal(calls.length, 4, 'the batch, then each item alone');
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, false, true],
    );
    assert.match(String((results[1] as { error: unknown }).error), /sink_rejected/);
  });

  it('passes on what a request tells per item (a fence that refused one)', async () => {
    const results = await driveItems(
      [
        { doc: 'a', n: 1 },
        { doc: 'b', n: 1 },
      ],
      async () =>
        driver({
          calls: [],
          write: async (batch) =>
            batch.map((i): ItemResult => (i.doc === 'a' ? { ok: true, fenced: 'stale' } : { ok: true })),
        }),
    );
    assert.deepEqual(results, [{ ok: true, fenced: 'stale' }, { ok: true }]);
  });

  it('a target that is unavailable fails every item retriably; any other failure to prepare is thrown', async () => {
    const outage = new RetriableError('down');
    const results = await driveItems(
      [
        { doc: 'a', n: 1 },
        { doc: 'b', n: 1 },
      ],
      async () => {
        throw outage;
      },
    );
    assert.deepEqual(results, [
      { ok: false, error: outage },
      { ok: false, error: outage },
    ]);
    await assert.rejects(
      driveItems([{ doc: 'a', n: 1 }], async () => {
        throw new ConfigError('no index');
      }),
      ConfigError,
    );
  });

  it('throws an item error every item would hit (a rejected key) instead of reporting it', async () => {
    const denied = new ConfigError('API key rejected');
    await assert.rejects(
      driveItems([{ doc: 'a', n: 1 }], async () =>
        driver({
          calls: [],
          write: async () => {
            throw denied;
          },
          throwsOn: (e) => e instanceof ConfigError,
        }),
      ),
      (e: unknown) => e === denied,
    );
  });

  it('without keys (idempotent deletes) every valid item goes in one request, repeats included', async () => {
    const calls: Item[][] = [];
    const items = [
      { doc: 'a', n: 1 },
      { doc: 'a', n: 1 },
    ];
    await driveItems(items, async () => {
      const { keyOf: _unused, ...rest } = driver({ calls });
      return rest;
    });
    assert.deepEqual(calls, [items]);
  });

  it('shows each wave and its results to the sink once applied', async () => {
    const seen: [string[], boolean[]][] = [];
    await driveItems(
      [
        { doc: 'a', n: 1 },
        { doc: 'b', n: -1 },
        { doc: 'a', n: 2 },
      ],
      async () =>
        driver({
          calls: [],
          afterWave: (items, results) => seen.push([items.map((i) => i.doc), results.map((r) => r.ok)]),
        }),
    );
    assert.deepEqual(seen, [
      [['a'], [true]],
      [['a'], [true]],
    ]);
  });
});
