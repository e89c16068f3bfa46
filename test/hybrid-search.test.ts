/**
 * `vecsync search --hybrid` (issue 14, item 6): vector and PostgreSQL full-text results fused by
 * reciprocal rank fusion, on documents that went through the real pipeline (SQL into the
 * triggers, Debezium, embedder, writer), and still filtered by tenant and by principal.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RRF_K, reciprocalRankFusion } from '../services/adapters/sinks/pgvector/hybrid.ts';
import { insertDocuments, startPipeline, waitForVersion, type TestPipeline } from './support/pipeline.ts';
import { uniqueId } from './support/ids.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/vecsync.mjs');

interface Hit {
  document_id: string;
  chunk_index: number;
  score: number;
  vector_rank?: number | null;
  text_rank?: number | null;
}

test('reciprocal rank fusion: sums 1/(k + rank) over both lists, ties broken by id', () => {
  const fused = reciprocalRankFusion(
    [
      { documentId: 'a', chunkIndex: 0 },
      { documentId: 'b', chunkIndex: 0 },
      { documentId: 'c', chunkIndex: 0 },
    ],
    [
      { documentId: 'c', chunkIndex: 0 },
      { documentId: 'd', chunkIndex: 0 },
      { documentId: 'c', chunkIndex: 0 },
    ],
  );
  assert.deepEqual(
    fused.map((f) => [f.documentId, f.vectorRank, f.textRank]),
    [
      ['c', 3, 1],
      ['a', 1, null],
      ['b', 2, null],
      ['d', null, 2],
    ],
  );
  assert.equal(fused[0]!.score, 1 / (RRF_K + 3) + 1 / (RRF_K + 1));
  assert.equal(fused[3]!.score, 1 / (RRF_K + 2));
  assert.equal(reciprocalRankFusion([{ documentId: 'x', chunkIndex: 1 }], [], 60, 1).length, 1);
  // Equal scores: document id order.
  const tie = reciprocalRankFusion([{ documentId: 'b', chunkIndex: 0 }], [{ documentId: 'a', chunkIndex: 0 }]);
  assert.deepEqual(
    tie.map((f) => f.documentId),
    ['a', 'b'],
  );
});

let p: TestPipeline;
const tenant = `tenant_${uniqueId('hybrid')}`;
const other = `tenant_${uniqueId('hybrid_other')}`;

async function cli(args: string[]): Promise<Hit[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args], {
    env: { ...process.env, VECSYNC_SINK_NAME: p.config.sink.name, VECSYNC_LOG_LEVEL: 'warn' },
  });
  return JSON.parse(stdout) as Hit[];
}

before(async () => {
  p = await startPipeline('hybrid');
  const docs = [
    { tenant, id: 'fox', body: 'The quick brown fox jumps over the lazy dog near the river bank.', acl: ['alice'] },
    { tenant, id: 'revenue', body: 'Quarterly revenue grew; the zanzibarite mine closed in spring.', acl: ['alice'] },
    { tenant, id: 'secret', body: 'Zanzibarite reserves are confidential board material.', acl: ['bob'] },
    {
      tenant,
      id: 'garden',
      body: 'Tomatoes and basil grow well together in a sunny garden bed.',
      acl: ['alice', 'bob'],
    },
    { tenant: other, id: 'elsewhere', body: 'Zanzibarite prices in another tenant entirely.', acl: ['alice'] },
  ];
  const versions = await insertDocuments(p.source, docs);
  for (const d of docs) await waitForVersion(p, d.tenant, d.id, versions.get(d.id)!);
});

after(async () => {
  await p?.stop();
});

test('hybrid search fuses the vector and full-text lists and keeps the tenant filter', async () => {
  const hits = await cli([
    'search',
    '--hybrid',
    '--json',
    '--top',
    '10',
    '--tenant',
    tenant,
    '--principal',
    'alice',
    'zanzibarite',
  ]);
  const ids = hits.map((h) => h.document_id);
  assert.ok(ids.length > 0);
  assert.ok(!ids.includes('elsewhere'), 'another tenant’s document never shows');
  assert.ok(!ids.includes('secret'), 'a document alice may not see never shows');
  assert.deepEqual(new Set(ids), new Set(['fox', 'revenue', 'garden']), 'every visible chunk is a vector candidate');
  const revenue = hits.find((h) => h.document_id === 'revenue')!;
  assert.equal(revenue.text_rank, 1, 'the only visible full-text match');
  assert.equal(ids[0], 'revenue', 'in both lists, so fused first');
  for (const h of hits) {
    const expected = (h.vector_rank ? 1 / (RRF_K + h.vector_rank) : 0) + (h.text_rank ? 1 / (RRF_K + h.text_rank) : 0);
    assert.ok(Math.abs(h.score - expected) < 1e-12, `RRF score of ${h.document_id}`);
  }
  // The vector list is the plain semantic search's order.
  const plain = await cli([
    'search',
    '--json',
    '--top',
    '10',
    '--tenant',
    tenant,
    '--principal',
    'alice',
    'zanzibarite',
  ]);
  const byVectorRank = [...hits].filter((h) => h.vector_rank).sort((a, b) => a.vector_rank! - b.vector_rank!);
  assert.deepEqual(
    byVectorRank.map((h) => h.document_id),
    plain.map((h) => h.document_id),
  );
  // The other tenant sees only its own.
  const elsewhere = await cli([
    'search',
    '--hybrid',
    '--json',
    '--tenant',
    other,
    '--principal',
    'alice',
    'zanzibarite',
  ]);
  assert.deepEqual(
    elsewhere.map((h) => [h.document_id, h.text_rank]),
    [['elsewhere', 1]],
  );
});

test('hybrid search keeps the principal filter', async () => {
  const bob = await cli(['search', '--hybrid', '--json', '--tenant', tenant, '--principal', 'bob', 'zanzibarite']);
  assert.deepEqual(new Set(bob.map((h) => h.document_id)), new Set(['secret', 'garden']));
  assert.equal(bob.find((h) => h.document_id === 'secret')?.text_rank, 1);
  const nobody = await cli([
    'search',
    '--hybrid',
    '--json',
    '--tenant',
    tenant,
    '--principal',
    'mallory',
    'zanzibarite',
  ]);
  assert.deepEqual(nobody, [], 'a principal on no ACL finds nothing, by vector or by text');
});
