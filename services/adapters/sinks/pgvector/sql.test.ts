import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkTableNames } from './naming.ts';
import {
  LOCK_DOCUMENTS,
  SET_ACLS,
  baseDdl,
  chunkTableDdl,
  deleteDocumentsSql,
  inspectSql,
  listDocumentsSql,
  listTenantsSql,
  searchSettings,
  searchSql,
  writeDocumentsSql,
} from './sql.ts';

const names = chunkTableNames('hashing-384.v1');
const T = '"vecsync_sink"."chunks_hashing_384_v1"';

/** Highest $n in a statement: the number of parameters the sink must bind. */
function parameterCount(sql: string): number {
  return Math.max(0, ...[...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
}

const oneStatement = (sql: string) => assert.ok(!sql.includes(';'), 'a single statement (one round trip)');

describe('pgvector SQL', () => {
  it('DDL: the ACL table and its GIN index, idempotent', () => {
    const ddl = baseDdl().join('\n');
    assert.match(ddl, /CREATE SCHEMA IF NOT EXISTS "vecsync_sink"/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS "vecsync_sink"."document_acl" \(/);
    assert.match(ddl, /PRIMARY KEY \(sink_name, tenant_id, document_id\)/);
    assert.match(ddl, /CREATE INDEX IF NOT EXISTS document_acl_principals_idx ON .* USING gin \(acl\)/);
  });

  it('DDL: one chunk table per model with HNSW (cosine) and the document btree', () => {
    const ddl = chunkTableDdl(names, 'hashing-384.v1', 384, { m: 16, efConstruction: 64 }).join('\n');
    assert.match(ddl, new RegExp(`CREATE TABLE IF NOT EXISTS ${T.replace(/\./g, '\\.')}`));
    assert.match(ddl, /embedding vector\(384\) NOT NULL/);
    assert.match(ddl, /PRIMARY KEY \(sink_name, id\)/);
    assert.match(ddl, /USING hnsw \(embedding vector_cosine_ops\) WITH \(m = 16, ef_construction = 64\)/);
    assert.match(ddl, /\(sink_name, tenant_id, document_id, chunk_index\)/);
    assert.match(ddl, /COMMENT ON TABLE .* IS 'vecsync chunks of model hashing-384\.v1'/);
    assert.throws(() => chunkTableDdl(names, 'k', 0, { m: 16, efConstruction: 64 }), RangeError);
    assert.throws(() => chunkTableDdl(names, 'k', 2001, { m: 16, efConstruction: 64 }), RangeError);
    assert.throws(() => chunkTableDdl(names, 'k', 3.5, { m: 16, efConstruction: 64 }), RangeError);
  });

  it('write: one statement with chunk upsert, prune, and version-guarded ACL upserts', () => {
    const sql = writeDocumentsSql(names, 384);
    oneStatement(sql);
    assert.equal(parameterCount(sql), 8);
    assert.match(sql, /\$8::vector\(384\)\[\]/);
    assert.match(sql, /jsonb_to_recordset\(\$3::jsonb\)/);
    assert.match(
      sql,
      /fenced AS \([\s\S]*WHERE f\.version < excluded\.version OR \(f\.version = excluded\.version AND NOT f\.tombstone\)/,
    );
    assert.match(sql, /docs AS \(\s*SELECT i\.\* FROM input i JOIN fenced/);
    assert.match(sql, /ON CONFLICT \(sink_name, id\) DO UPDATE SET[\s\S]*IS DISTINCT FROM/);
    assert.match(sql, /pruned AS \(\s*DELETE FROM [\s\S]*t\.chunk_index >= d\.chunk_count/);
    assert.match(
      sql,
      /acl_given AS \([\s\S]*WHERE d\.acl IS NOT NULL[\s\S]*GREATEST\(a\.acl_version, excluded\.acl_version\)/,
    );
    assert.match(sql, /WHERE a\.acl_version < excluded\.acl_version/);
    assert.match(
      sql,
      /acl_kept AS \([\s\S]*SELECT \$1, d\.tenant_id, d\.document_id, '\{\}', 0, d\.document_version FROM docs d\s+WHERE d\.acl IS NULL/,
    );
    // The chunk id is tenant:document#index.
    assert.match(sql, /d\.tenant_id \|\| ':' \|\| d\.document_id \|\| '#' \|\| c\.chunk_index/);
    assert.throws(() => writeDocumentsSql(names, 0), RangeError);
  });

  it('delete: a tombstone in the fence, then every given table and the ACL row, in one statement', () => {
    const other = chunkTableNames('hashing-384.v2');
    const sql = deleteDocumentsSql([names, other]);
    oneStatement(sql);
    assert.equal(parameterCount(sql), 6);
    assert.match(
      sql,
      /fenced AS \(\s*INSERT INTO "vecsync_sink"\."document_fence"[\s\S]*WHERE f\.version <= excluded\.version/,
    );
    assert.match(
      sql,
      /chunks_0 AS \(\s*DELETE FROM "vecsync_sink"\."chunks_hashing_384_v1" AS c USING accepted r\s+WHERE r\.model_key = \(\$6::text\[\]\)\[1\]/,
    );
    assert.match(
      sql,
      /chunks_1 AS \(\s*DELETE FROM "vecsync_sink"\."chunks_hashing_384_v2"[\s\S]*\(\$6::text\[\]\)\[2\]/,
    );
    assert.match(sql, /acl AS \(\s*DELETE FROM "vecsync_sink"\."document_acl" AS a USING verdict v\s+WHERE v\.whole/);
    const none = deleteDocumentsSql([]);
    assert.doesNotMatch(none, /chunks_0/);
    oneStatement(none);
  });

  it('every write starts by locking its documents in key order', () => {
    oneStatement(LOCK_DOCUMENTS);
    assert.equal(parameterCount(LOCK_DOCUMENTS), 3);
    assert.match(LOCK_DOCUMENTS, /pg_advisory_xact_lock\(k\)[\s\S]*ORDER BY k/);
  });

  it('ACL: one upsert that only raises acl_version', () => {
    oneStatement(SET_ACLS);
    assert.equal(parameterCount(SET_ACLS), 2);
    assert.match(SET_ACLS, /ON CONFLICT \(sink_name, tenant_id, document_id\) DO UPDATE/);
    assert.match(SET_ACLS, /f\.tombstone AND f\.acl_version >= w\.acl_version/);
    assert.match(
      SET_ACLS,
      /WHERE a\.acl_version < excluded\.acl_version\s+OR \(a\.acl_version = excluded\.acl_version AND a\.acl IS DISTINCT FROM excluded\.acl\)/,
    );
  });

  it('search: filtered by sink, tenant and principal, cosine, re-sorted after a relaxed scan', () => {
    const sql = searchSql(names);
    oneStatement(sql);
    assert.equal(parameterCount(sql), 5);
    assert.match(sql, /WHERE c\.sink_name = \$2 AND c\.tenant_id = \$3 AND a\.acl @> ARRAY\[\$4::text\]/);
    assert.match(
      sql,
      /JOIN "vecsync_sink"\."document_acl" AS a\s+ON a\.sink_name = c\.sink_name AND a\.tenant_id = c\.tenant_id AND a\.document_id = c\.document_id/,
    );
    assert.match(sql, /c\.embedding <=> \$1::vector AS distance/);
    assert.match(sql, /AS MATERIALIZED/);
    assert.match(sql, /1 - distance AS score/);
    assert.match(sql, /ORDER BY distance, document_id, chunk_index\s*$/);
    const settings = searchSettings(40, 20000);
    assert.match(
      settings,
      /^BEGIN READ ONLY; SET LOCAL hnsw\.iterative_scan = relaxed_order; SET LOCAL hnsw\.ef_search = 40; SET LOCAL hnsw\.max_scan_tuples = 20000$/,
    );
    assert.throws(() => searchSettings(0, 20000), RangeError);
    assert.throws(() => searchSettings(1.5, 20000), RangeError);
  });

  it('reads: inspect, keyset pages of documents, loose scan of tenants', () => {
    assert.equal(parameterCount(inspectSql(names, false)), 3);
    assert.doesNotMatch(inspectSql(names, false), /embedding/);
    assert.match(inspectSql(names, true), /c\.embedding::text AS embedding/);
    assert.match(inspectSql(names, false), /ORDER BY c\.document_id, c\.chunk_index$/);

    const first = listDocumentsSql(names, false);
    const next = listDocumentsSql(names, true);
    assert.equal(parameterCount(first), 3);
    assert.equal(parameterCount(next), 4);
    assert.doesNotMatch(first, /document_id > \$4/);
    assert.match(next, /c\.document_id > \$4/);
    assert.match(next, /min\(c\.document_version\)/);
    assert.match(next, /LIMIT \$3/);
    // The drill-down's bucket filter comes after the keyset parameter, whichever is present.
    const someBuckets = listDocumentsSql(names, false, true);
    const someBucketsNext = listDocumentsSql(names, true, true);
    assert.equal(parameterCount(someBuckets), 5);
    assert.equal(parameterCount(someBucketsNext), 6);
    assert.match(
      someBuckets,
      /md5\(c\.tenant_id \|\| ':' \|\| c\.document_id\).*% \$4::bigint\) = ANY\(\$5::bigint\[\]\)/,
    );
    assert.match(someBucketsNext, /c\.document_id > \$4 AND .*% \$5::bigint\) = ANY\(\$6::bigint\[\]\)/);
    assert.doesNotMatch(next, /md5/);

    const tenants = listTenantsSql(names);
    assert.equal(parameterCount(tenants), 1);
    assert.match(tenants, /WITH RECURSIVE/);
  });
});
