/**
 * The core sync path on the real stack: PostgreSQL commit → outbox → Debezium → Kafka → embedder →
 * Avro chunk records → writer → pgvector, with the services running in this process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createChunker } from '../services/domain/transforms/chunker.ts';
import { metrics } from '../services/adapters/telemetry/metrics.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import { uniqueId } from './support/ids.ts';
import {
  dump,
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  type TestPipeline,
} from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const WORDS = [
  'replication',
  'failover',
  'standby',
  'index',
  'vacuum',
  'latency',
  'query',
  'backup',
  'restore',
  'cluster',
];

/** A body of roughly `chars` characters made of sentences (the splitter cuts at sentence ends). */
function body(chars: number, seed: number, vocabulary = WORDS): string {
  const out: string[] = [];
  let n = 0;
  let i = seed;
  while (n < chars) {
    const sentence = `Note ${i} about ${vocabulary[i % vocabulary.length]} and ${vocabulary[(i * 7 + 3) % vocabulary.length]} in production.`;
    out.push(sentence);
    n += sentence.length + 1;
    i++;
  }
  return out.join(' ');
}

async function embeddingCounts(): Promise<{ computed: number; cached: number }> {
  const values = (await metrics.embeddings.get()).values;
  const sum = (result: string) => values.filter((v) => v.labels.result === result).reduce((a, v) => a + v.value, 0);
  return { computed: sum('computed'), cached: sum('cached') };
}

describe('core sync path', () => {
  let p: TestPipeline;
  const tenant = `tenant_${uniqueId('sync')}`;

  before(async () => {
    p = await startPipeline('sync');
  });
  after(async () => {
    await p?.stop();
  });

  test('N inserted documents all become searchable with the right version and chunk count', async () => {
    const chunker = createChunker({ size: p.config.chunking.size, overlap: p.config.chunking.overlap, maxChunks: 512 });
    const docs = Array.from({ length: 25 }, (_, i) => ({
      tenant,
      id: `doc-${i}`,
      body: body(300 + i * 180, i),
      acl: ['group:eng'],
    }));
    const versions = await insertDocuments(p.source, docs);
    for (const d of docs) await waitForVersion(p, tenant, d.id, versions.get(d.id)!);
    const stored = await dump(p, tenant);
    for (const d of docs) {
      const chunks = stored.filter((c) => c.document_id === d.id);
      const expected = await chunker.chunk(d.body);
      assert.equal(chunks.length, expected.length, `${d.id} chunk count`);
      assert.ok(expected.length >= 1);
      assert.deepEqual(
        chunks.map((c) => c.chunk_index),
        expected.map((c) => c.index),
      );
      assert.ok(chunks.every((c) => c.document_version === versions.get(d.id)));
      assert.deepEqual(
        chunks.map((c) => c.content_hash),
        expected.map((c) => c.contentHash),
      );
      assert.ok(chunks.every((c) => c.acl.includes('group:eng')));
    }
    // Searchable: the principal finds a document by its own text; another principal finds nothing.
    const embedder = createEmbedder({ ...p.config.embedder, retry: p.config.retry });
    const [vector] = await embedder.embed([docs[7]!.body.slice(0, 200)]);
    const hits = await p.sink.search({
      modelKey: p.rt.activeIndex.modelKey,
      tenantId: tenant,
      principal: 'group:eng',
      vector: vector!,
      topK: 3,
    });
    assert.equal(hits[0]?.documentId, 'doc-7');
    const denied = await p.sink.search({
      modelKey: p.rt.activeIndex.modelKey,
      tenantId: tenant,
      principal: 'group:sales',
      vector: vector!,
      topK: 3,
    });
    assert.deepEqual(denied, []);
  });

  test('an update replaces the old chunks', async () => {
    const versions = await insertDocuments(p.source, [{ tenant, id: 'upd', body: body(1500, 1), acl: ['group:eng'] }]);
    await waitForVersion(p, tenant, 'upd', versions.get('upd')!);
    const before = await dump(p, tenant, 'upd');
    const next = await updateDocument(p.source, tenant, 'upd', 'body = $3', [
      body(1500, 1000, ['kubernetes', 'autoscaling', 'pods', 'ingress']),
    ]);
    await waitForVersion(p, tenant, 'upd', next);
    const afterUpdate = await dump(p, tenant, 'upd');
    assert.ok(afterUpdate.length > 0);
    assert.ok(afterUpdate.every((c) => c.document_version === next));
    const oldHashes = new Set(before.map((c) => c.content_hash));
    assert.ok(
      afterUpdate.every((c) => !oldHashes.has(c.content_hash)),
      'no chunk of the old content survives',
    );
  });

  test('a document that shrinks leaves no orphan chunks', async () => {
    const versions = await insertDocuments(p.source, [
      { tenant, id: 'shrink', body: body(5000, 3), acl: ['group:eng'] },
    ]);
    await waitForVersion(p, tenant, 'shrink', versions.get('shrink')!);
    const big = await dump(p, tenant, 'shrink');
    assert.ok(big.length >= 5, `expected a long document, got ${big.length} chunks`);
    const next = await updateDocument(p.source, tenant, 'shrink', 'body = $3', ['Now a single short sentence.']);
    await waitForVersion(p, tenant, 'shrink', next);
    const small = await dump(p, tenant, 'shrink');
    assert.deepEqual(
      small.map((c) => [c.chunk_index, c.document_version]),
      [[0, next]],
    );
  });

  test('a title-only change embeds nothing new (the hash cache serves every chunk)', async () => {
    const versions = await insertDocuments(p.source, [
      { tenant, id: 'title', body: body(2500, 9), acl: ['group:eng'] },
    ]);
    await waitForVersion(p, tenant, 'title', versions.get('title')!);
    const chunks = (await dump(p, tenant, 'title')).length;
    const before = await embeddingCounts();
    const next = await updateDocument(p.source, tenant, 'title', 'title = $3', ['A brand new title']);
    await waitForVersion(p, tenant, 'title', next);
    const afterChange = await embeddingCounts();
    assert.equal(afterChange.computed - before.computed, 0, 'no embedding computed');
    assert.equal(afterChange.cached - before.cached, chunks, 'every chunk came from the cache');
    const stored = await dump(p, tenant, 'title');
    assert.ok(stored.every((c) => c.document_version === next));
  });

  test('the outbox rows are marked processed once applied', async () => {
    const versions = await insertDocuments(p.source, [
      { tenant, id: 'status', body: body(400, 4), acl: ['group:eng'] },
    ]);
    await waitForVersion(p, tenant, 'status', versions.get('status')!);
    const row = await waitFor(async () => {
      const res = await p.source.query<{ status: string; processed_at: Date | null }>(
        `SELECT status, processed_at FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 AND document_id = 'status' AND lane = 'live'`,
        [tenant],
      );
      return res.rows[0]?.status === 'processed' ? res.rows[0] : undefined;
    });
    assert.ok(row.processed_at instanceof Date);
  });
});
