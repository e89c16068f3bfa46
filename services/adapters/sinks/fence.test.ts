import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { afterDelete, afterWrite, fenceAcl, fenceDelete, fenceWrite, type FenceRow } from './fence.ts';

type Op = { op: 'write'; version: number } | { op: 'delete'; version: number; aclVersion: number };

/** Folds ops through the fence as a sink applies them; returns the final row and what applied. */
function run(ops: readonly Op[]): { fence: FenceRow | undefined; applied: boolean[] } {
  let fence: FenceRow | undefined;
  const applied = ops.map((o) => {
    const verdict = o.op === 'write' ? fenceWrite(fence, o.version) : fenceDelete(fence, o.version);
    if (!verdict.apply) return false;
    fence = o.op === 'write' ? afterWrite(fence, o.version) : afterDelete(fence, o.version, o.aclVersion, 0);
    return true;
  });
  return { fence, applied };
}

const op = fc.oneof(
  fc.record({ op: fc.constant('write' as const), version: fc.integer({ min: 1, max: 6 }) }),
  fc.record({
    op: fc.constant('delete' as const),
    version: fc.integer({ min: 1, max: 6 }),
    aclVersion: fc.integer({ min: 0, max: 6 }),
  }),
);

describe('sink fence', () => {
  it('a content write applies when newer, or a replay of the same version; never over a tombstone it does not beat', () => {
    assert.deepEqual(fenceWrite(undefined, 1), { apply: true });
    const stored = { version: 3, tombstone: false, aclVersion: 0 };
    assert.deepEqual(fenceWrite(stored, 4), { apply: true });
    assert.deepEqual(fenceWrite(stored, 3), { apply: true });
    assert.deepEqual(fenceWrite(stored, 2), { apply: false, reason: 'stale' });
    const deleted = { version: 3, tombstone: true, aclVersion: 2 };
    assert.deepEqual(fenceWrite(deleted, 3), { apply: false, reason: 'tombstoned' });
    assert.deepEqual(fenceWrite(deleted, 2), { apply: false, reason: 'tombstoned' });
    assert.deepEqual(fenceWrite(deleted, 4), { apply: true }, 're-created above the tombstone');
  });

  it('a delete applies when at least as new (it wins a tie), and not over a newer re-creation', () => {
    assert.deepEqual(fenceDelete(undefined, 2), { apply: true });
    assert.deepEqual(fenceDelete({ version: 2, tombstone: false, aclVersion: 0 }, 2), { apply: true });
    assert.deepEqual(fenceDelete({ version: 2, tombstone: true, aclVersion: 0 }, 2), { apply: true });
    assert.deepEqual(fenceDelete({ version: 3, tombstone: false, aclVersion: 0 }, 2), {
      apply: false,
      reason: 'stale',
    });
  });

  it('an ACL write at or below a tombstone’s ACL version changes nothing; a newer one (re-creation) applies', () => {
    const tomb = afterDelete({ version: 1, tombstone: false, aclVersion: 0 }, 2, 3, 4);
    assert.deepEqual(tomb, { version: 2, tombstone: true, aclVersion: 4 });
    assert.deepEqual(fenceAcl([tomb], 4), { apply: false, reason: 'tombstoned' });
    assert.deepEqual(fenceAcl([tomb], 1), { apply: false, reason: 'tombstoned' });
    assert.deepEqual(fenceAcl([tomb], 5), { apply: true });
    assert.deepEqual(fenceAcl([], 1), { apply: true });
    // While stored, the ACL row is the register: the fence does not block.
    assert.deepEqual(fenceAcl([{ version: 3, tombstone: false, aclVersion: 9 }], 1), { apply: true });
    // Any tombstoned model blocks.
    assert.deepEqual(fenceAcl([{ version: 3, tombstone: false, aclVersion: 0 }, tomb], 3), {
      apply: false,
      reason: 'tombstoned',
    });
  });

  it('the final fence is the same for any delivery order and any duplicates (the newest wins)', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), fc.integer(), (ops, seed) => {
        const shuffled = [...ops, ...ops.slice(0, 3)];
        let s = seed;
        for (let i = shuffled.length - 1; i > 0; i--) {
          s = (s * 1103515245 + 12345) | 0;
          const j = Math.abs(s) % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        const a = run(ops).fence;
        const b = run(shuffled).fence;
        assert.equal(a?.version, b?.version);
        assert.equal(a?.tombstone, b?.tombstone);
        // The content register is the greatest (version, delete-wins-a-tie) of all ops.
        const top = [...ops].sort(
          (x, y) => y.version - x.version || (y.op === 'delete' ? 1 : 0) - (x.op === 'delete' ? 1 : 0),
        )[0]!;
        assert.equal(a?.version, top.version);
        assert.equal(a?.tombstone, top.op === 'delete');
      }),
    );
  });

  it('nothing older than what the fence holds ever applies', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
        const { applied } = run(ops);
        let fence: FenceRow | undefined;
        ops.forEach((o, i) => {
          if (
            fence &&
            (o.version < fence.version || (o.op === 'write' && o.version === fence.version && fence.tombstone))
          ) {
            assert.equal(applied[i], false, `op ${i} is older than the fence`);
          }
          if (applied[i]) {
            fence = o.op === 'write' ? afterWrite(fence, o.version) : afterDelete(fence, o.version, o.aclVersion, 0);
          }
        });
      }),
    );
  });
});
