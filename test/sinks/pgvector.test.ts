/**
 * The pgvector sink against the real sink database (`VECSYNC_PGVECTOR_URL`, the local stack by
 * default): the conformance suite, then what only pgvector promises. The run uses its own sink
 * name and model tables and removes them at the end. An unreachable database fails the tests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../services/config/index.ts';
import { ConfigError, RetriableError, isPoison, isRetriable } from '../../services/domain/errors.ts';
import { chunkTableName, SINK_SCHEMA } from '../../services/adapters/sinks/pgvector/naming.ts';
import { createPgvectorSink } from '../../services/adapters/sinks/pgvector/sink.ts';
import type { PgvectorOptions } from '../../services/adapters/sinks/pgvector/config.ts';
import type { Sink } from '../../services/adapters/sinks/types.ts';
import { angled, assertAllOk, doc, runSinkConformance, runSuffix, uniqueIndexes, uniqueTenant } from './conformance.ts';

const config = loadConfig();
const sinkName = `test_${runSuffix()}`;
const dims = config.embedder.dimensions;
const indexes = uniqueIndexes(dims, 'pgvtest');
const [A] = indexes;
const createdTables = new Set<string>(indexes.map((i) => chunkTableName(i.modelKey)));

function makeSink(overrides: Partial<PgvectorOptions> = {}): Sink {
  // A page of 2 documents makes the conformance listings cross several keyset pages.
  return createPgvectorSink(config, { overrides: { sinkName, listPageSize: 2, ...overrides } });
}

const admin = new pg.Pool({ connectionString: config.sink.pgvector.url, max: 2 });

after(async () => {
  try {
    for (const table of createdTables) {
      await admin.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(SINK_SCHEMA)}.${pg.escapeIdentifier(table)}`);
    }
    await admin.query(`DELETE FROM ${SINK_SCHEMA}.document_acl WHERE sink_name = $1`, [sinkName]);
  } finally {
    await admin.end();
  }
});

runSinkConformance('pgvector', async () => makeSink(), { indexes });

describe('pgvector sink', () => {
  let sink: Sink;
  const query = angled(dims, 0);

  before(async () => {
    sink = makeSink();
    await sink.ensureIndex(A);
  });
  after(async () => {
    await sink?.close();
  });

  it('creates the model table, its HNSW and btree indexes and the ACL table', async () => {
    const table = chunkTableName(A.modelKey);
    assert.match(table, /^chunks_pgvtest_[0-9a-f]{8}_a_v1$/);
    const columns = await admin.query<{ column_name: string; type: string }>(
      `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [`${SINK_SCHEMA}.${table}`],
    );
    assert.deepEqual(
      columns.rows.map((r) => r.column_name),
      [
        'sink_name',
        'id',
        'tenant_id',
        'document_id',
        'chunk_index',
        'document_version',
        'content_hash',
        'model_key',
        'title',
        'metadata',
        'content',
        'embedding',
      ],
    );
    assert.equal(columns.rows.find((r) => r.column_name === 'embedding')?.type, `vector(${dims})`);
    const defs = (
      await admin.query<{ indexdef: string }>(
        `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`,
        [SINK_SCHEMA, table],
      )
    ).rows
      .map((r) => r.indexdef)
      .join('\n');
    assert.match(defs, /USING hnsw \(embedding vector_cosine_ops\) WITH \(m='?16'?, ef_construction='?64'?\)/);
    assert.match(defs, /btree \(sink_name, tenant_id, document_id, chunk_index\)/);
    assert.match(defs, /PRIMARY KEY|btree \(sink_name, id\)/);
    // One GIN index on acl, whether the migration or the sink created it (same name).
    const acl = await admin.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'document_acl' AND indexdef LIKE '%gin (acl)%'`,
      [SINK_SCHEMA],
    );
    assert.deepEqual(acl.rows, [{ indexname: 'document_acl_principals_idx' }]);
  });

  it('refuses an existing model table with other dimensions', async () => {
    const other = makeSink();
    try {
      await assert.rejects(other.ensureIndex({ modelKey: A.modelKey, dimensions: dims + 1 }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(`vector\\(${dims}\\).*${dims + 1} dimensions`));
        return true;
      });
    } finally {
      await other.close();
    }
  });

  it('isolates an item the database rejects (NUL byte) and writes the rest', async () => {
    const tenant = uniqueTenant('nul');
    const bad = doc(A, tenant, 'bad', { chunkCount: 2 });
    bad.chunks[1]!.content = 'before\u0000after';
    const badMeta = doc(A, tenant, 'bad-meta', { chunkCount: 1, metadata: { note: 'x\u0000y' } });
    const results = await sink.writeDocuments(A, [doc(A, tenant, 'ok1'), bad, badMeta, doc(A, tenant, 'ok2')]);
    assert.equal(results.length, 4);
    assert.ok(results[0]?.ok && results[3]?.ok);
    for (const r of [results[1], results[2]]) {
      assert.ok(r && !r.ok);
      assert.ok(isPoison(r.error), String(r.error));
      assert.match((r.error as Error).message, /^sink_rejected: pgvector rejected document write \(22/);
    }
    assert.deepEqual([...new Set((await sink.inspect(A, tenant)).map((c) => c.document_id))], ['ok1', 'ok2']);
  });

  it('a replay writes no new row versions (no HNSW churn)', async () => {
    const tenant = uniqueTenant('churn');
    const write = doc(A, tenant, 'd', { chunkCount: 3 });
    assertAllOk(await sink.writeDocuments(A, [write]), 1);
    const versions = async () =>
      (
        await admin.query<{ ctid: string; xmin: string }>(
          `SELECT ctid::text, xmin::text FROM ${SINK_SCHEMA}.${chunkTableName(A.modelKey)} WHERE sink_name = $1 AND tenant_id = $2 ORDER BY id`,
          [sinkName, tenant],
        )
      ).rows;
    const before = await versions();
    assertAllOk(await sink.writeDocuments(A, [write]), 1);
    assert.deepEqual(await versions(), before);
  });

  it('ACL rows only ever move forward, and an ACL that arrives before the content is kept', async () => {
    const tenant = uniqueTenant('aclorder');
    const acl = (principals: string[], aclVersion: number) => ({
      tenantId: tenant,
      documentId: 'd',
      principals,
      aclVersion,
      chunkCount: 2,
    });
    assertAllOk(await sink.setAcls([A], [acl(['bob'], 3)]), 1);
    assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'd', { chunkCount: 2, acl: null })]), 1);
    let stored = await sink.inspect(A, tenant, 'd');
    assert.deepEqual(
      stored.map((c) => [c.acl, c.acl_version]),
      [
        [['bob'], 3],
        [['bob'], 3],
      ],
    );
    assertAllOk(await sink.setAcls([A], [acl(['eve'], 2)]), 1);
    assertAllOk(
      await sink.writeDocuments(A, [
        doc(A, tenant, 'd', { version: 2, chunkCount: 2, acl: { principals: ['eve'], aclVersion: 1 } }),
      ]),
      1,
    );
    stored = await sink.inspect(A, tenant, 'd');
    assert.deepEqual(
      stored.map((c) => [c.document_version, c.acl, c.acl_version]),
      [
        [2, ['bob'], 3],
        [2, ['bob'], 3],
      ],
    );
    const hits = await sink.search({
      modelKey: A.modelKey,
      tenantId: tenant,
      principal: 'bob',
      vector: query,
      topK: 5,
    });
    assert.equal(hits.length, 2);
  });

  it('a selective ACL filter still returns topK (iterative index scan)', async () => {
    const tenant = uniqueTenant('iterative');
    // 300 near matches only alice may see, and 5 far ones for bob.
    const many = Array.from({ length: 30 }, (_, d) =>
      doc(A, tenant, `alice-${d}`, { chunkCount: 10, embedding: (i) => angled(dims, 0.001 * (d * 10 + i)) }),
    );
    assertAllOk(await sink.writeDocuments(A, many), many.length);
    assertAllOk(
      await sink.writeDocuments(A, [
        doc(A, tenant, 'bob', {
          chunkCount: 5,
          acl: { principals: ['bob'], aclVersion: 1 },
          embedding: (i) => angled(dims, 1 + 0.1 * i),
        }),
      ]),
      1,
    );
    const hits = await sink.search({
      modelKey: A.modelKey,
      tenantId: tenant,
      principal: 'bob',
      vector: query,
      topK: 5,
    });
    assert.deepEqual(
      hits.map((h) => h.chunkIndex),
      [0, 1, 2, 3, 4],
    );
  });

  it('holds and filters an ACL of 50,000 principals (one row per document), and a revoke of one of them', async () => {
    const tenant = uniqueTenant('acl50k');
    const principals = Array.from({ length: 50_000 }, (_, i) => `user:${String(i).padStart(5, '0')}`);
    const started = performance.now();
    assertAllOk(
      await sink.writeDocuments(A, [
        doc(A, tenant, 'wide', { chunkCount: 3, acl: { principals, aclVersion: 1 } }),
        doc(A, tenant, 'narrow', { chunkCount: 1, acl: { principals: ['user:00000'], aclVersion: 1 } }),
      ]),
      2,
    );
    const writeMs = performance.now() - started;
    const find = async (principal: string) =>
      (await sink.search({ modelKey: A.modelKey, tenantId: tenant, principal, vector: query, topK: 10 }))
        .map((h) => h.documentId)
        .filter((d, i, all) => all.indexOf(d) === i)
        .sort();
    assert.deepEqual(await find('user:25000'), ['wide']);
    assert.deepEqual(await find('user:49999'), ['wide']);
    assert.deepEqual(await find('user:00000'), ['narrow', 'wide']);
    assert.deepEqual(await find('user:50000'), []);
    const row = await admin.query<{ n: number; bytes: number }>(
      `SELECT cardinality(acl) AS n, pg_column_size(acl) AS bytes FROM ${SINK_SCHEMA}.document_acl
        WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'wide'`,
      [sinkName, tenant],
    );
    assert.equal(row.rows[0]?.n, 50_000, 'one row holds the whole ACL');
    // Revoke one principal: one row rewritten, no chunk touched.
    const revoked = principals.filter((p) => p !== 'user:25000');
    const again = performance.now();
    assertAllOk(
      await sink.setAcls(
        [A],
        [{ tenantId: tenant, documentId: 'wide', principals: revoked, aclVersion: 2, chunkCount: 3 }],
      ),
      1,
    );
    const revokeMs = performance.now() - again;
    assert.deepEqual(await find('user:25000'), []);
    assert.deepEqual(await find('user:25001'), ['wide']);
    const stored = await sink.inspect(A, tenant, 'wide');
    assert.deepEqual(
      stored.map((c) => [c.acl.length, c.acl_version]),
      [
        [49_999, 2],
        [49_999, 2],
        [49_999, 2],
      ],
    );
    process.stdout.write(
      `50,000-principal ACL: write ${writeMs.toFixed(0)} ms, revoke ${revokeMs.toFixed(0)} ms, ` +
        `stored in ${row.rows[0]?.bytes} bytes (shared machine, noisy)\n`,
    );
  });

  it('rejects bad searches with a clear error', async () => {
    const base = { modelKey: A.modelKey, tenantId: 't', principal: 'p', vector: query, topK: 5 };
    await assert.rejects(sink.search({ ...base, topK: 0 }), ConfigError);
    await assert.rejects(sink.search({ ...base, vector: new Float32Array(dims + 1) }), /dimensions/);
    await assert.rejects(sink.search({ ...base, modelKey: `missing-${runSuffix()}.v1` }), /no index for model/);
  });

  it('reports an unreachable database as retriable', async () => {
    const down = createPgvectorSink(
      { sink: { name: sinkName, pgvector: { url: 'postgres://postgres@127.0.0.1:1/vecsync_vectors' } } },
      { overrides: { connectTimeoutMs: 1000 } },
    );
    try {
      await assert.rejects(down.healthCheck(), RetriableError);
      const results = await down.writeDocuments(A, [doc(A, 't', 'd')]);
      assert.equal(results.length, 1);
      assert.ok(results[0] && !results[0].ok && isRetriable(results[0].error), 'write fails retriably');
      const deletes = await down.deleteDocuments([A], [{ tenantId: 't', documentId: 'd' }]);
      assert.ok(deletes[0] && !deletes[0].ok && isRetriable(deletes[0].error), 'delete fails retriably');
      await assert.rejects(down.listTenants(A), RetriableError);
    } finally {
      await down.close();
    }
  });

  it('health check passes against the stack', async () => {
    await sink.healthCheck();
  });
});
