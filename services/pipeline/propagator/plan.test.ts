import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AclEvent, DeleteEvent } from '../../domain/types.ts';
import { ledgerKeyString, type LedgerRow } from '../../adapters/postgres/ledger.ts';
import { groupAcrossModels, planPropagatorBatch } from './plan.ts';
import { chunkCountIn, mergeAclWrites } from '../../adapters/sinks/validate.ts';

const at = new Date(0).toISOString();
const del = (version: number): DeleteEvent => ({
  op: 'delete',
  tenant_id: 't',
  document_id: 'd',
  version,
  acl_version: 1,
  reason: 'deleted',
  created_at: at,
});
const acl = (aclVersion: number, principals: string[]): AclEvent => ({
  op: 'acl',
  tenant_id: 't',
  document_id: 'd',
  version: 1,
  acl_version: aclVersion,
  acl: principals,
  created_at: at,
});
const keyOf = (modelKey: string) => ledgerKeyString({ tenantId: 't', documentId: 'd', modelKey });
function rows(modelKeys: string[], partial: Partial<LedgerRow>): Map<string, LedgerRow> {
  return new Map(
    modelKeys.map((modelKey) => [
      keyOf(modelKey),
      {
        tenantId: 't',
        documentId: 'd',
        modelKey,
        version: 1,
        acl_version: 1,
        acl: ['a'],
        tombstone: false,
        chunkCount: 3,
        contentHash: 'h',
        ...partial,
      },
    ]),
  );
}

test('a delete removes the document from every live model and leaves tombstones', () => {
  const plan = planPropagatorBatch([del(2)], ['m.v1', 'm.v2'], rows(['m.v1', 'm.v2'], {}));
  assert.deepEqual([...plan.deletes.keys()].sort(), ['m.v1', 'm.v2']);
  assert.equal(plan.next.get(keyOf('m.v1'))?.tombstone, true);
  assert.equal(plan.next.get(keyOf('m.v1'))?.version, 2);
  assert.deepEqual(plan.results, ['applied']);
});

test('an older delete is a no-op', () => {
  const plan = planPropagatorBatch([del(1)], ['m.v1'], rows(['m.v1'], { version: 4 }));
  assert.equal(plan.deletes.size, 0);
  assert.equal(plan.next.size, 0);
  assert.deepEqual(plan.results, ['skipped']);
});

test('ACL events write the newest ACL once, whatever their order in the slice', () => {
  const plan = planPropagatorBatch([acl(4, ['c']), acl(2, ['b']), acl(3, ['b', 'c'])], ['m.v1'], rows(['m.v1'], {}));
  const writes = plan.aclWrites.get('m.v1') ?? [];
  assert.equal(writes.length, 1);
  assert.deepEqual(writes[0]!.item.principals, ['c']);
  assert.equal(writes[0]!.item.aclVersion, 4);
  assert.equal(writes[0]!.item.chunkCount, 3);
});

test('an ACL change on a tombstoned document writes nothing but is recorded', () => {
  const plan = planPropagatorBatch([acl(5, ['z'])], ['m.v1'], rows(['m.v1'], { tombstone: true, version: 3 }));
  assert.equal(plan.aclWrites.size, 0);
  assert.equal(plan.deletes.size, 0);
  assert.equal(plan.next.get(keyOf('m.v1'))?.acl_version, 5);
});

test('a delete and a later ACL change in one slice: deleted, no ACL write', () => {
  const plan = planPropagatorBatch([acl(2, ['b']), del(2)], ['m.v1'], rows(['m.v1'], {}));
  assert.equal(plan.deletes.get('m.v1')?.length, 1);
  assert.equal(plan.aclWrites.size, 0);
});

test('work on the same document in several models becomes one sink call per model set', () => {
  const plan = planPropagatorBatch([del(2)], ['m.v1', 'm.v2'], rows(['m.v1', 'm.v2'], {}));
  const groups = groupAcrossModels(plan.deletes, (ref) => `${ref.tenantId}:${ref.documentId}`);
  assert.equal(groups.length, 1);
  assert.deepEqual(groups[0]!.models, ['m.v1', 'm.v2']);
  assert.equal(groups[0]!.entries.length, 1);
  assert.deepEqual(groups[0]!.entries[0]!.keys.sort(), [keyOf('m.v1'), keyOf('m.v2')].sort());
});

test("a revoke across models carries each model's chunk count; a delete carries its versions", () => {
  const ledger = new Map([...rows(['m.v1'], { chunkCount: 2 }), ...rows(['m.v2'], { chunkCount: 7 })]);
  const plan = planPropagatorBatch([acl(2, ['b'])], ['m.v1', 'm.v2'], ledger);
  const groups = groupAcrossModels(plan.aclWrites, (w) => `${w.tenantId}:${w.documentId}`, mergeAclWrites);
  assert.equal(groups.length, 1);
  const write = groups[0]!.entries[0]!.item;
  assert.deepEqual(write.chunkCounts, { 'm.v1': 2, 'm.v2': 7 });
  assert.equal(chunkCountIn(write, 'm.v2'), 7);
  assert.equal(chunkCountIn(write, 'm.v1'), 2);

  const deleted = planPropagatorBatch([del(2)], ['m.v1'], rows(['m.v1'], { acl_version: 4 }));
  assert.deepEqual(deleted.deletes.get('m.v1')?.[0]?.item, {
    tenantId: 't',
    documentId: 'd',
    version: 2,
    aclVersion: 4,
  });
});
