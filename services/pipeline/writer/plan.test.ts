import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DocumentChunks } from '../../domain/types.ts';
import { ledgerKeyString, type LedgerRow } from '../../adapters/postgres/ledger.ts';
import { planWriterBatch } from './plan.ts';

function record(version: number, aclVersion: number, acl: string[], chunks = 2): DocumentChunks {
  return {
    tenant_id: 't1',
    document_id: 'd1',
    document_version: version,
    acl_version: aclVersion,
    acl,
    chunk_count: chunks,
    model_key: 'm.v1',
    title: `v${version}`,
    metadata: {},
    content_hash: `h${version}`,
    created_at: new Date(0).toISOString(),
    outbox_id: version,
    chunks: Array.from({ length: chunks }, (_, i) => ({
      chunk_index: i,
      content: `v${version} chunk ${i}`,
      content_hash: `c${version}.${i}`,
      embedding: [1, 0],
    })),
  };
}

const key = ledgerKeyString({ tenantId: 't1', documentId: 'd1', modelKey: 'm.v1' });

function ledger(partial: Partial<LedgerRow>): Map<string, LedgerRow> {
  const row: LedgerRow = {
    tenantId: 't1',
    documentId: 'd1',
    modelKey: 'm.v1',
    version: 0,
    acl_version: 0,
    acl: [],
    tombstone: false,
    chunkCount: 0,
    contentHash: null,
    ...partial,
  };
  return new Map([[key, row]]);
}

test('several versions of a document in one slice write only the newest, once', () => {
  const plan = planWriterBatch([record(3, 1, ['a']), record(1, 1, ['a']), record(2, 1, ['a'])], new Map());
  const writes = plan.writes.get('m.v1') ?? [];
  assert.equal(writes.length, 1);
  assert.equal(writes[0]!.write.documentVersion, 3);
  assert.equal(writes[0]!.write.previousChunkCount, 0, 'nothing held before');
  assert.equal(plan.next.get(key)?.version, 3);
  assert.deepEqual(plan.results, ['applied', 'applied', 'applied']);
});

test('a record older than the ledger is a no-op', () => {
  const plan = planWriterBatch([record(2, 1, ['a'])], ledger({ version: 5, acl_version: 1, acl: ['a'] }));
  assert.equal(plan.writes.size, 0);
  assert.equal(plan.aclWrites.size, 0);
  assert.equal(plan.next.size, 0);
  assert.deepEqual(plan.results, ['skipped']);
});

test('a tombstone blocks a late older upsert but not a newer one', () => {
  const late = planWriterBatch([record(4, 1, ['a'])], ledger({ version: 4, tombstone: true }));
  assert.equal(late.writes.size, 0);
  const recreated = planWriterBatch([record(5, 2, ['a'])], ledger({ version: 4, tombstone: true, acl_version: 1 }));
  assert.equal(recreated.writes.get('m.v1')?.[0]?.write.documentVersion, 5);
  assert.equal(recreated.next.get(key)?.tombstone, false);
  const grown = planWriterBatch(
    [record(6, 2, ['a'], 1)],
    ledger({ version: 5, acl_version: 2, acl: ['a'], chunkCount: 4 }),
  );
  assert.equal(grown.writes.get('m.v1')?.[0]?.write.previousChunkCount, 4, 'the ledger tells the sink what to prune');
});

test('a content write carries the ledger ACL when it is newer than the record ACL', () => {
  const plan = planWriterBatch(
    [record(2, 1, ['alice', 'bob'])],
    ledger({ version: 1, acl_version: 3, acl: ['alice'] }),
  );
  const write = plan.writes.get('m.v1')?.[0]?.write;
  assert.deepEqual(write?.acl, { principals: ['alice'], aclVersion: 3 });
  assert.equal(plan.next.get(key)?.acl_version, 3);
});

test('a duplicate record with a newer ACL only writes the ACL', () => {
  const plan = planWriterBatch(
    [record(2, 4, ['carol'])],
    ledger({ version: 2, acl_version: 3, acl: ['alice'], chunkCount: 2 }),
  );
  assert.equal(plan.writes.size, 0);
  assert.deepEqual(plan.aclWrites.get('m.v1')?.[0]?.write, {
    tenantId: 't1',
    documentId: 'd1',
    principals: ['carol'],
    aclVersion: 4,
    chunkCount: 2,
  });
});
