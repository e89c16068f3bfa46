/**
 * The whole sync path with the Pinecone sink: PostgreSQL commit → outbox → Debezium → Kafka →
 * embedder → writer / propagator → Pinecone (the local contract server, writes visible after a
 * delay), with the real services running in this process (`VECSYNC_SINK=pinecone`,
 * `VECSYNC_PINECONE_HOST=http://127.0.0.1:<port>`).
 *
 * Reads of the sink are polled (Pinecone is eventually consistent); the ledger tells when the
 * pipeline has applied a change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import type { StoredChunk } from '../services/adapters/sinks/types.ts';
import { uniqueId } from './support/ids.ts';
import { startPineconeServer, type PineconeIndexServer } from './support/pinecone-server.ts';
import {
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  type TestPipeline,
} from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const WORDS = ['replication', 'failover', 'standby', 'index', 'vacuum', 'latency', 'query', 'backup', 'restore'];

function body(chars: number, seed: number): string {
  const out: string[] = [];
  let n = 0;
  for (let i = seed; n < chars; i++) {
    const sentence = `Note ${i} about ${WORDS[i % WORDS.length]} and ${WORDS[(i * 7 + 3) % WORDS.length]} in production.`;
    out.push(sentence);
    n += sentence.length + 1;
  }
  return out.join(' ');
}

interface LedgerRow {
  version: number;
  aclVersion: number;
  chunkCount: number;
  tombstone: boolean;
}

async function ledger(p: TestPipeline, tenant: string, id: string): Promise<LedgerRow | undefined> {
  const res = await p.source.query<{ version: string; acl_version: string; chunk_count: number; tombstone: boolean }>(
    `SELECT version, acl_version, chunk_count, tombstone FROM vecsync.sync_state
      WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3 AND model_key = $4`,
    [p.config.sink.name, tenant, id, p.rt.activeIndex.modelKey],
  );
  const r = res.rows[0];
  return (
    r && {
      version: Number(r.version),
      aclVersion: Number(r.acl_version),
      chunkCount: r.chunk_count,
      tombstone: r.tombstone,
    }
  );
}

/** The source's current state of every document of a tenant. */
async function sourceState(p: TestPipeline, tenant: string) {
  const res = await p.source.query<{ document_id: string; version: string; acl_version: string; acl: string[] }>(
    `SELECT d.document_id, d.version, d.acl_version,
            coalesce(array_agg(a.principal ORDER BY a.principal) FILTER (WHERE a.principal IS NOT NULL), '{}') AS acl
       FROM vecsync.documents d
       LEFT JOIN vecsync.document_acl a USING (tenant_id, document_id)
      WHERE d.tenant_id = $1 AND d.status = 'active'
      GROUP BY d.document_id, d.version, d.acl_version`,
    [tenant],
  );
  return new Map(
    res.rows.map((r) => [
      r.document_id,
      { version: Number(r.version), aclVersion: Number(r.acl_version), acl: [...r.acl].sort() },
    ]),
  );
}

const sortedAcl = (c: StoredChunk) => [...c.acl].sort();

describe('pipeline with the Pinecone sink', () => {
  let p: TestPipeline;
  const pinecones: PineconeIndexServer[] = [];
  let pinecone: PineconeIndexServer;

  before(async () => {
    const config = loadConfig({ ...process.env, VECSYNC_EMBEDDER: 'hashing' });
    await ensureStack(config);
    // Every live model gets an index of its own (host mode: the sink never calls the control
    // plane, and a model without a host would be a configuration error).
    const source = new pg.Pool({ connectionString: config.sourceUrl, max: 1 });
    const live = await source
      .query<{ name: string; version: number; dimensions: number }>(
        `SELECT name, version, dimensions FROM vecsync.embedding_models WHERE state <> 'retired'`,
      )
      .finally(() => source.end());
    const active = modelKey(config.embedder.model, config.embedder.version);
    pinecone = await startPineconeServer({ dimension: config.embedder.dimensions, visibilityDelayMs: 100 });
    pinecones.push(pinecone);
    const hosts = [pinecone.host];
    for (const m of live.rows) {
      const key = modelKey(m.name, m.version);
      if (key === active) continue;
      const other = await startPineconeServer({ dimension: m.dimensions, visibilityDelayMs: 100 });
      pinecones.push(other);
      hosts.push(`${key}=${other.host}`);
    }
    p = await startPipeline('pinecone', {
      env: {
        VECSYNC_SINK: 'pinecone',
        PINECONE_API_KEY: 'test',
        VECSYNC_PINECONE_HOST: hosts.join(','),
      },
    });
    assert.equal(p.sink.type, 'pinecone');
  });

  after(async () => {
    await p?.stop();
    await Promise.all(pinecones.map((s) => s.close()));
  });

  const search = (tenant: string, principal: string, vector: Float32Array, topK = 5) =>
    p.sink.search({ modelKey: p.rt.activeIndex.modelKey, tenantId: tenant, principal, vector, topK });

  async function embed(text: string): Promise<Float32Array> {
    const embedder = createEmbedder({ ...p.config.embedder, retry: p.config.retry });
    const [vector] = await embedder.embed([text]);
    return vector!;
  }

  /** Polls the sink until the document holds `expected` chunks at the ledger's versions and ACL. */
  async function waitForSink(tenant: string, id: string, acl: string[]): Promise<StoredChunk[]> {
    const row = await waitFor(() => ledger(p, tenant, id), { description: `${tenant}:${id} in the ledger` });
    return waitFor(
      async () => {
        const chunks = await p.sink.inspect(p.rt.activeIndex, tenant, id);
        const current = await ledger(p, tenant, id);
        if (!current || current.tombstone) return undefined;
        const ok =
          chunks.length === current.chunkCount &&
          chunks.every(
            (c) =>
              c.document_version === current.version &&
              c.acl_version === current.aclVersion &&
              JSON.stringify(sortedAcl(c)) === JSON.stringify([...acl].sort()),
          );
        return ok ? chunks : undefined;
      },
      { timeoutMs: 60_000, description: `${tenant}:${id} in Pinecone at ledger version ${row.version}` },
    );
  }

  test('inserted documents become searchable, filtered by principal', async () => {
    const tenant = `tenant_${uniqueId('pcins')}`;
    const docs = Array.from({ length: 12 }, (_, i) => ({
      tenant,
      id: `doc-${i}`,
      body: body(300 + i * 150, i * 11),
      acl: i % 3 === 0 ? ['group:eng', 'user:ann'] : ['group:eng'],
      metadata: { category: `c${i % 2}`, tags: ['x', 'y'] },
    }));
    const versions = await insertDocuments(p.source, docs);
    for (const d of docs) {
      await waitForVersion(p, tenant, d.id, versions.get(d.id)!);
      const chunks = await waitForSink(tenant, d.id, d.acl);
      assert.ok(chunks.length >= 1);
      assert.ok(chunks.every((c) => c.model === p.rt.activeIndex.modelKey && c.tenant_id === tenant));
    }
    // Tenants are Pinecone namespaces, named by the tenant id.
    assert.ok(pinecone.namespaces().includes(tenant));
    const vector = await embed(docs[6]!.body.slice(0, 200));
    const hits = await waitFor(async () => {
      const h = await search(tenant, 'group:eng', vector, 3);
      return h[0]?.documentId === 'doc-6' ? h : undefined;
    });
    assert.ok(hits[0]!.score > 0.5);
    assert.deepEqual(await search(tenant, 'group:sales', vector), [], 'a principal in no ACL sees nothing');
    const ann = await search(tenant, 'user:ann', vector, 50);
    assert.ok(ann.length > 0 && ann.every((h) => ['doc-0', 'doc-3', 'doc-6', 'doc-9'].includes(h.documentId)));
    assert.deepEqual(await search(`tenant_${uniqueId('other')}`, 'group:eng', vector), [], 'other tenant: nothing');
  });

  test('a delete removes the chunks', async () => {
    const tenant = `tenant_${uniqueId('pcdel')}`;
    const versions = await insertDocuments(p.source, [
      { tenant, id: 'gone', body: body(2500, 5), acl: ['group:eng'] },
      { tenant, id: 'kept', body: body(600, 9), acl: ['group:eng'] },
    ]);
    await waitForVersion(p, tenant, 'gone', versions.get('gone')!);
    await waitForVersion(p, tenant, 'kept', versions.get('kept')!);
    assert.ok((await waitForSink(tenant, 'gone', ['group:eng'])).length >= 3);
    await waitForSink(tenant, 'kept', ['group:eng']);

    await p.source.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, 'gone']);
    await waitFor(async () => (await ledger(p, tenant, 'gone'))?.tombstone, { description: 'tombstone' });
    await waitFor(async () => (await p.sink.inspect(p.rt.activeIndex, tenant, 'gone')).length === 0, {
      description: 'the deleted document leaves Pinecone',
    });
    assert.deepEqual(
      pinecone.records(tenant).filter((r) => r.id.startsWith(`${tenant}:gone#`)),
      [],
      'nothing of it is stored, visible or not',
    );
    assert.ok((await p.sink.inspect(p.rt.activeIndex, tenant, 'kept')).length > 0);
  });

  test('an ACL revoke takes effect without re-embedding', async () => {
    const tenant = `tenant_${uniqueId('pcacl')}`;
    const text = body(1800, 21);
    const versions = await insertDocuments(p.source, [
      { tenant, id: 'doc', body: text, acl: ['user:bob', 'user:eve'] },
    ]);
    await waitForVersion(p, tenant, 'doc', versions.get('doc')!);
    await waitForSink(tenant, 'doc', ['user:bob', 'user:eve']);
    const beforeRevoke = pinecone.records(tenant);
    const vector = await embed(text.slice(0, 200));
    await waitFor(async () => (await search(tenant, 'user:eve', vector)).length > 0);

    await p.source.query(
      `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = 'doc' AND principal = 'user:eve'`,
      [tenant],
    );
    const chunks = await waitForSink(tenant, 'doc', ['user:bob']);
    assert.ok(chunks.every((c) => c.document_version === versions.get('doc')));
    await waitFor(async () => (await search(tenant, 'user:eve', vector)).length === 0, {
      description: 'eve no longer finds the document',
    });
    assert.ok((await search(tenant, 'user:bob', vector)).length > 0);
    // Per-record metadata updates: the vectors are the ones written before, untouched.
    const afterRevoke = pinecone.records(tenant);
    assert.deepEqual(
      afterRevoke.map((r) => r.values),
      beforeRevoke.map((r) => r.values),
    );
    assert.ok(
      pinecone.requests.some((r) => r.route === '/vectors/update' && r.namespace === tenant && r.status === 200),
    );
  });

  test('a 429 storm drains without loss: every document ends at its version and ACL', async () => {
    const tenant = `tenant_${uniqueId('pcstorm')}`;
    pinecone.failRate(0.5, { status: 429 });
    try {
      const docs = Array.from({ length: 30 }, (_, i) => ({
        tenant,
        id: `doc-${i}`,
        body: body(300 + (i % 5) * 400, i * 3),
        acl: ['group:eng', `user:${i}`],
      }));
      await insertDocuments(p.source, docs);
      // While it storms: content updates, ACL changes and deletes on all three paths.
      await waitFor(async () => ((await ledger(p, tenant, 'doc-0')) ? true : undefined), {
        timeoutMs: 120_000,
        description: 'doc-0 applied',
      });
      for (let i = 0; i < 6; i++) {
        await updateDocument(p.source, tenant, `doc-${i}`, 'body = $3', [body(900, 1000 + i)]);
      }
      await p.source.query(
        `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND principal = 'group:eng' AND document_id = ANY($2)`,
        [tenant, ['doc-6', 'doc-7', 'doc-8', 'doc-9']],
      );
      await p.source.query(
        `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) SELECT $1, unnest($2::text[]), 'group:ops'`,
        [tenant, ['doc-10', 'doc-11']],
      );
      await p.source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = ANY($2)`, [
        tenant,
        ['doc-12', 'doc-13', 'doc-14'],
      ]);
      // It storms until the pipeline has applied everything (the ledger is never ahead of the sink).
      const target = await sourceState(p, tenant);
      await waitFor(
        async () => {
          for (const [id, want] of target) {
            const row = await ledger(p, tenant, id);
            if (!row || row.version < want.version || row.aclVersion < want.aclVersion) return false;
          }
          for (const id of ['doc-12', 'doc-13', 'doc-14']) if (!(await ledger(p, tenant, id))?.tombstone) return false;
          return true;
        },
        { timeoutMs: 120_000, intervalMs: 500, description: 'the pipeline to apply everything during the storm' },
      );
    } finally {
      pinecone.clearFaults();
    }
    const rejected = pinecone.requests.filter((r) => r.status === 429 && r.namespace === tenant).length;

    const expected = await sourceState(p, tenant);
    assert.equal(expected.size, 27);
    for (const [id, want] of expected) {
      await waitForVersion(p, tenant, id, want.version);
      const chunks = await waitForSink(tenant, id, want.acl);
      assert.ok(chunks.length > 0 && chunks.every((c) => c.document_version === want.version), id);
      assert.ok(
        chunks.every((c) => c.acl_version === want.aclVersion),
        id,
      );
    }
    for (const id of ['doc-12', 'doc-13', 'doc-14']) {
      await waitFor(async () => (await ledger(p, tenant, id))?.tombstone, { description: `${id} tombstone` });
      await waitFor(async () => (await p.sink.inspect(p.rt.activeIndex, tenant, id)).length === 0, {
        description: `${id} gone`,
      });
    }
    // Exactly what the source holds, nothing more (no orphan chunk of an old version).
    const stored = await p.sink.inspect(p.rt.activeIndex, tenant);
    assert.deepEqual([...new Set(stored.map((c) => c.document_id))].sort(), [...expected.keys()].sort());
    for (const [id, want] of expected) {
      const row = await ledger(p, tenant, id);
      assert.equal(stored.filter((c) => c.document_id === id).length, row?.chunkCount, `${id} chunk count`);
      assert.deepEqual(sortedAcl(stored.find((c) => c.document_id === id)!), want.acl, `${id} acl`);
    }
    // The topics are shared with other tests (some send hostile messages on purpose): count ours.
    const dead = [...p.committed.writer, ...p.committed.propagator].filter(
      (c) => c.outcome.kind === 'dead' && c.message.key?.startsWith(`${tenant}:`),
    );
    assert.deepEqual(
      dead.map((d) => `${d.message.key}: ${String((d.outcome as { error?: unknown }).error)}`),
      [],
      'nothing of this tenant was dead-lettered',
    );
    assert.ok(rejected >= 10, `${rejected} requests of this tenant were answered 429`);
  });
});
