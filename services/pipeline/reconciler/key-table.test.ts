import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyTable, type KeyEntry } from './key-table.ts';

const entry = (over: Partial<KeyEntry> = {}): KeyEntry => ({
  tenant: 0,
  prefix: 7,
  version: 1,
  aclVersion: 1,
  searchable: true,
  digest: { hi: 0xdeadbeef, lo: 0xcafef00d },
  ...over,
});

describe('KeyTable', () => {
  it('keeps the newest state per key: higher version, then higher ACL version, ties to the later put', () => {
    const table = new KeyTable(16);
    table.put({ hi: 0, lo: 1 }, entry({ version: 2, aclVersion: 1 }));
    table.put({ hi: 0, lo: 1 }, entry({ version: 1, aclVersion: 9 })); // older content: ignored
    table.put({ hi: 0, lo: 1 }, entry({ version: 2, aclVersion: 3, digest: { hi: 0, lo: 5 } }));
    table.put({ hi: 0, lo: 1 }, entry({ version: 2, aclVersion: 3, digest: { hi: 0, lo: 6 }, searchable: false })); // tie: later wins
    assert.equal(table.size, 1);
    assert.deepEqual(
      [...table.entries()],
      [entry({ version: 2, aclVersion: 3, digest: { hi: 0, lo: 6 }, searchable: false })],
    );
  });

  it('get returns the latest entry of a hash, undefined for a hash never put', () => {
    const table = new KeyTable(16);
    table.put({ hi: 3, lo: 1 }, entry({ version: 2 }));
    table.put({ hi: 3, lo: 1 }, entry({ version: 4, searchable: false }));
    table.put({ hi: 9, lo: 1 }, entry({ version: 7 })); // same low word: the next slot
    assert.deepEqual(table.get({ hi: 3, lo: 1 }), entry({ version: 4, searchable: false }));
    assert.deepEqual(table.get({ hi: 9, lo: 1 }), entry({ version: 7 }));
    assert.equal(table.get({ hi: 4, lo: 1 }), undefined);
    assert.deepEqual(
      [...table.hashedEntries()].map(([hash, e]) => [hash.hi, hash.lo, e.version]).sort((a, b) => a[0]! - b[0]!),
      [
        [3, 1, 4],
        [9, 1, 7],
      ],
    );
  });

  it('a removed key (version -1) is overtaken by anything after it', () => {
    const table = new KeyTable(16);
    table.put({ hi: 0, lo: 1 }, entry({ version: -1, aclVersion: -1, searchable: false }));
    table.put({ hi: 0, lo: 1 }, entry({ version: 1 }));
    assert.equal([...table.entries()][0]?.searchable, true);
  });

  it('matches a Map of the same puts, across growth and colliding low words', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            // Few distinct low words force long probe chains.
            hi: fc.integer({ min: 0, max: 50 }),
            lo: fc.integer({ min: 0, max: 3 }),
            version: fc.integer({ min: 1, max: 5 }),
            aclVersion: fc.integer({ min: 1, max: 5 }),
          }),
          { maxLength: 400 },
        ),
        (puts) => {
          const table = new KeyTable(16);
          const model = new Map<number, KeyEntry>();
          for (const p of puts) {
            const hash = { hi: p.hi, lo: p.lo };
            const id = p.hi * 4 + p.lo;
            const next = entry({ version: p.version, aclVersion: p.aclVersion, digest: hash, prefix: id });
            table.put(hash, next);
            const prev = model.get(id);
            if (
              !prev ||
              next.version > prev.version ||
              (next.version === prev.version && next.aclVersion >= prev.aclVersion)
            ) {
              model.set(id, next);
            }
          }
          const byDigest = (a: KeyEntry, b: KeyEntry) => a.prefix - b.prefix;
          assert.equal(table.size, model.size);
          assert.deepEqual([...table.entries()].sort(byDigest), [...model.values()].sort(byDigest));
          for (const [id, e] of model) assert.deepEqual(table.get({ hi: Math.floor(id / 4), lo: id % 4 }), e);
        },
      ),
    );
  });
});
