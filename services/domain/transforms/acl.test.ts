import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { diffAcl, normalizeAcl, sameAcl } from './acl.ts';

describe('acl', () => {
  it('normalizes to unique principals in code-unit order, independent of locale', () => {
    assert.deepEqual(normalizeAcl(['bob', 'Alice', 'bob', 'alice', 'Émile', 'zed']), [
      'Alice',
      'alice',
      'bob',
      'zed',
      'Émile',
    ]);
    assert.deepEqual(normalizeAcl([]), []);
  });

  it('diffs added and removed principals, normalized', () => {
    assert.deepEqual(diffAcl(['b', 'a', 'c'], ['d', 'a', 'd', 'b']), { added: ['d'], removed: ['c'], changed: true });
    assert.deepEqual(diffAcl(['a', 'b'], ['b', 'a', 'a']), { added: [], removed: [], changed: false });
  });

  const acl = fc.array(fc.constantFrom('alice', 'bob', 'carol', 'dave', 'group:eng'), { maxLength: 8 });

  it('applying a diff to the old set yields the new set', () => {
    fc.assert(
      fc.property(acl, acl, (before, after) => {
        const { added, removed } = diffAcl(before, after);
        const applied = normalizeAcl([...before.filter((p) => !removed.includes(p)), ...added]);
        assert.deepEqual(applied, normalizeAcl(after));
        assert.equal(sameAcl(before, after), !diffAcl(before, after).changed);
      }),
    );
  });

  it('normalizing is idempotent and order-insensitive', () => {
    fc.assert(
      fc.property(acl, (principals) => {
        const once = normalizeAcl(principals);
        assert.deepEqual(normalizeAcl(once), once);
        assert.deepEqual(normalizeAcl([...principals].reverse()), once);
      }),
    );
  });
});
