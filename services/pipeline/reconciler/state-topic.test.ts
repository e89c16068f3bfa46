import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketOf, md5Hex, stateDigest, ZERO_DIGEST } from '../../domain/transforms/drift.ts';
import { KeyTable } from './key-table.ts';
import { parseStateValue, StateDetail, type StateFold } from './state-topic.ts';

/** A fold as `foldStateTopic` builds it, from (key, state) pairs in topic order. */
function fold(messages: [string, { version: number; acl_version: number; status?: string } | null][]): StateFold {
  const table = new KeyTable(16);
  const tenants: string[] = [];
  for (const [key, value] of messages) {
    const [tenant, document] = key.split(':') as [string, string];
    if (!tenants.includes(tenant)) tenants.push(tenant);
    const state = parseStateValue(value === null ? null : Buffer.from(JSON.stringify({ status: 'active', ...value })));
    const hex = md5Hex(key);
    table.put(
      { hi: parseInt(hex.slice(8, 16), 16), lo: parseInt(hex.slice(16, 24), 16) },
      {
        tenant: tenants.indexOf(tenant),
        prefix: parseInt(hex.slice(0, 8), 16),
        version: state?.version ?? -1,
        aclVersion: state?.acl_version ?? -1,
        searchable: state?.searchable ?? false,
        digest: state?.searchable ? stateDigest(tenant, document, state.version, state.acl_version) : ZERO_DIGEST,
      },
    );
  }
  return { table, tenants, messages: messages.length, invalid: 0 };
}

describe('StateDetail (phase B of the state topic, from the key table of phase A)', () => {
  const buckets = 4;
  const docs = Array.from({ length: 24 }, (_, i) => `d${i}`);
  const inBucket = (b: number) => docs.filter((d) => bucketOf('t', d, buckets) === b);
  const [b0, b1] = [inBucket(0), inBucket(1)];

  it('looks keys up as the newest state read, removed keys as version -1, unknown keys as undefined', () => {
    const f = fold([
      [`t:${b0[0]}`, { version: 2, acl_version: 1 }],
      [`t:${b0[0]}`, { version: 1, acl_version: 5 }], // older content, later offset: ignored
      [`t:${b0[1]}`, { version: 3, acl_version: 1, status: 'archived' }],
      [`t:${b0[2]}`, null],
    ]);
    const detail = new StateDetail(f, new Map([['t', { buckets, ids: new Set([0]) }]]));
    assert.deepEqual(detail.lookup(`t:${b0[0]}`), { version: 2, acl_version: 1, searchable: true });
    assert.deepEqual(detail.lookup(`t:${b0[1]}`), { version: 3, acl_version: 1, searchable: false });
    assert.deepEqual(detail.lookup(`t:${b0[2]}`), { version: -1, acl_version: -1, searchable: false });
    assert.equal(detail.lookup(`t:${b0[3]}`), undefined);
    assert.equal(detail.lookup(`other:${b0[0]}`), undefined);
  });

  it('counts the searchable keys of the differing buckets that no lookup named (they need a second read)', () => {
    const f = fold([
      [`t:${b0[0]}`, { version: 1, acl_version: 1 }],
      [`t:${b0[1]}`, { version: 1, acl_version: 1 }],
      [`t:${b0[2]}`, { version: 1, acl_version: 1, status: 'deleted' }], // not searchable: never extra
      [`t:${b1[0]}`, { version: 1, acl_version: 1 }], // bucket 1 does not differ
      [`u:${b0[0]}`, { version: 1, acl_version: 1 }], // another tenant, not wanted
    ]);
    const detail = new StateDetail(f, new Map([['t', { buckets, ids: new Set([0]) }]]));
    assert.equal(detail.unknown, 2);
    detail.lookup(`t:${b0[0]}`);
    detail.lookup(`t:${b0[0]}`);
    detail.lookup(`t:${b0[2]}`);
    assert.equal(detail.unknown, 1);
    detail.lookup(`t:${b0[1]}`);
    assert.equal(detail.unknown, 0);
    assert.equal(new StateDetail(f, new Map()).unknown, 0);
  });
});
