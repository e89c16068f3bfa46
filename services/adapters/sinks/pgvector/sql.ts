/**
 * SQL text of every statement the pgvector sink runs. Pure: no I/O, so the shapes are unit-tested
 * and reviewed here. Parameters are always bound ($n); only identifiers that come from
 * `naming.ts` (sanitized, quoted) and integers checked by the caller are spliced into the text.
 *
 * Tables: one `vecsync_sink.chunks_<model>` per model (its own dimensions and HNSW index), and one
 * `vecsync_sink.document_acl` shared by every model: the ACL is per document and joined at query
 * time, so a revoke updates one row and never touches the HNSW index.
 */
import pg from 'pg';
import { bucketOfSql } from '../../../domain/transforms/drift.ts';
import { ACL_TABLE, FENCE_TABLE, SINK_SCHEMA, tableComment, type ChunkTableNames } from './naming.ts';

const ident = pg.escapeIdentifier;
const literal = pg.escapeLiteral;

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/** pgvector's HNSW index supports up to 2,000 dimensions for `vector`. */
export const MAX_DIMENSIONS = 2000;

/**
 * Schema and ACL table. `CREATE ... IF NOT EXISTS`, so it is safe next to the sink migration
 * (`migrations/sink/`), which creates the same objects; whichever runs first wins.
 */
export function baseDdl(): string[] {
  return [
    'CREATE EXTENSION IF NOT EXISTS vector',
    `CREATE SCHEMA IF NOT EXISTS ${ident(SINK_SCHEMA)}`,
    // Same definition and index name as migrations/sink/0002_document-acl.sql.
    `CREATE TABLE IF NOT EXISTS ${ACL_TABLE} (
  sink_name text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  acl text[] NOT NULL DEFAULT '{}',
  acl_version bigint NOT NULL,
  document_version bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink_name, tenant_id, document_id)
)`,
    // Lets the planner start from "documents this principal may see" when that set is small
    // (the search predicate is written as `acl @> ARRAY[principal]` so it can).
    `CREATE INDEX IF NOT EXISTS document_acl_principals_idx ON ${ACL_TABLE} USING gin (acl)`,
    // Same definition as migrations/sink/0003_document-fence.sql.
    `CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (
  sink_name text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  model_key text NOT NULL,
  version bigint NOT NULL,
  tombstone boolean NOT NULL DEFAULT false,
  acl_version bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink_name, tenant_id, document_id, model_key)
)`,
  ];
}

export interface HnswParams {
  m: number;
  efConstruction: number;
}

/** One model's chunk table, its HNSW index (cosine) and the per-document btree. */
export function chunkTableDdl(
  names: ChunkTableNames,
  modelKey: string,
  dimensions: number,
  hnsw: HnswParams,
): string[] {
  checkInt('dimensions', dimensions, 1, MAX_DIMENSIONS);
  checkInt('hnsw m', hnsw.m, 2, 100);
  checkInt('hnsw ef_construction', hnsw.efConstruction, 4, 1000);
  return [
    `CREATE TABLE IF NOT EXISTS ${names.qualified} (
  sink_name text NOT NULL,
  id text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  chunk_index integer NOT NULL CHECK (chunk_index >= 0),
  document_version bigint NOT NULL,
  content_hash text NOT NULL,
  model_key text NOT NULL,
  title text NOT NULL DEFAULT '',
  metadata jsonb NOT NULL DEFAULT '{}',
  content text NOT NULL,
  embedding vector(${dimensions}) NOT NULL,
  PRIMARY KEY (sink_name, id)
)`,
    `COMMENT ON TABLE ${names.qualified} IS ${literal(tableComment(modelKey))}`,
    `CREATE INDEX IF NOT EXISTS ${ident(names.hnswIndex)} ON ${names.qualified}
  USING hnsw (embedding vector_cosine_ops) WITH (m = ${hnsw.m}, ef_construction = ${hnsw.efConstruction})`,
    `CREATE INDEX IF NOT EXISTS ${ident(names.documentIndex)} ON ${names.qualified} (sink_name, tenant_id, document_id, chunk_index)`,
  ];
}

/**
 * What an existing model table looks like: its vector dimensions (the typmod of `embedding`) and
 * its comment. No row when the table does not exist. $1: bare table name.
 */
export const DESCRIBE_TABLE = `SELECT a.atttypmod AS dimensions, obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding' AND NOT a.attisdropped
WHERE n.nspname = ${literal(SINK_SCHEMA)} AND c.relname = $1 AND c.relkind = 'r'`;

/** Serializes concurrent `ensureIndex` calls across processes (CREATE IF NOT EXISTS races on pg_type). */
export const ENSURE_LOCK = `SELECT pg_advisory_xact_lock(hashtext('vecsync_sink.ensure_index'))`;

export const VECTOR_TYPE_OID = `SELECT to_regtype('vector')::oid AS oid`;

/**
 * The first statement of every write transaction: a transaction-scoped advisory lock per document
 * (sink, tenant, document), taken in key order so two transactions cannot deadlock. Everything the
 * transaction does next runs on snapshots taken after every earlier writer of those documents
 * committed, so the fence it reads is current and a delete sees every chunk (a chunk written
 * by a statement still running is not visible to a statement that does not wait for it).
 * $1 sink name, $2 tenant ids, $3 document ids (parallel arrays).
 */
export const LOCK_DOCUMENTS = `SELECT count(pg_advisory_xact_lock(k))::integer AS locked FROM (
  SELECT DISTINCT hashtextextended($1 || ':' || u.t || ':' || u.d, 0) AS k
  FROM unnest($2::text[], $3::text[]) AS u(t, d)
  ORDER BY k
) AS keys`;

/** What a fenced statement reports per input item: its position (from 0) and why it was refused, if it was. */
export interface FencedRow {
  ord: number;
  refused: 'stale' | 'tombstoned' | null;
}

/**
 * The whole batch in ONE statement, after `LOCK_DOCUMENTS` in the same transaction. Parameters:
 *
 * - $1 sink name, $2 model key
 * - $3 documents, jsonb array of {ord, tenant_id, document_id, document_version, chunk_count, title,
 *   metadata, acl (text[] or null), acl_version}
 * - $4..$8 chunks, parallel arrays: document ord, chunk index, content, content hash, embeddings
 *   (`vector[]`, sent in binary)
 *
 * CTEs: `fenced` moves the fence of the documents whose version it lets through (`fenceWrite`: newer,
 * or equal and not tombstoned) and `docs` is those documents only, so a refused document writes
 * nothing at all. `upserted` writes every chunk (a replay that changes nothing writes no new
 * tuple, so HNSW sees no churn), `pruned` removes chunks at or beyond each document's chunk count
 * (no orphans when a document shrinks), `acl_given`/`acl_kept` upsert the document's ACL row, only
 * ever raising its acl_version. A document written with `acl: null` keeps its stored ACL; when it
 * has none yet it gets an empty one (visible to nobody, acl_version 0) so every stored document
 * has a row. All CTEs see the same snapshot; they never touch the same row (chunk indexes are
 * validated to be below the chunk count, documents are unique within a statement). Returns one
 * `FencedRow` per document.
 */
export function writeDocumentsSql(names: ChunkTableNames, dimensions: number): string {
  checkInt('dimensions', dimensions, 1, MAX_DIMENSIONS);
  const t = names.qualified;
  return `WITH input AS (
  SELECT * FROM jsonb_to_recordset($3::jsonb) AS d(
    ord integer, tenant_id text, document_id text, document_version bigint, chunk_count integer,
    title text, metadata jsonb, acl text[], acl_version bigint)
), prior AS (
  SELECT f.tenant_id, f.document_id, f.version, f.tombstone FROM ${FENCE_TABLE} AS f JOIN input i
    ON f.sink_name = $1 AND f.model_key = $2 AND f.tenant_id = i.tenant_id AND f.document_id = i.document_id
), fenced AS (
  INSERT INTO ${FENCE_TABLE} AS f (sink_name, tenant_id, document_id, model_key, version, tombstone)
  SELECT $1, i.tenant_id, i.document_id, $2, i.document_version, false FROM input i
  ON CONFLICT (sink_name, tenant_id, document_id, model_key) DO UPDATE SET
    version = excluded.version, tombstone = false, updated_at = now()
  WHERE f.version < excluded.version OR (f.version = excluded.version AND NOT f.tombstone)
  RETURNING f.tenant_id, f.document_id
), docs AS (
  SELECT i.* FROM input i JOIN fenced USING (tenant_id, document_id)
), upserted AS (
  INSERT INTO ${t} AS t
    (sink_name, id, tenant_id, document_id, chunk_index, document_version, content_hash, model_key, title, metadata, content, embedding)
  SELECT $1, d.tenant_id || ':' || d.document_id || '#' || c.chunk_index, d.tenant_id, d.document_id, c.chunk_index,
         d.document_version, c.content_hash, $2, d.title, d.metadata, c.content, c.embedding
  FROM unnest($4::integer[], $5::integer[], $6::text[], $7::text[], $8::vector(${dimensions})[])
         AS c(ord, chunk_index, content, content_hash, embedding)
  JOIN docs d USING (ord)
  ORDER BY 2
  ON CONFLICT (sink_name, id) DO UPDATE SET
    document_version = excluded.document_version, content_hash = excluded.content_hash,
    model_key = excluded.model_key, title = excluded.title, metadata = excluded.metadata,
    content = excluded.content, embedding = excluded.embedding
  WHERE (t.document_version, t.content_hash, t.model_key, t.title, t.metadata, t.content, t.embedding)
        IS DISTINCT FROM
        (excluded.document_version, excluded.content_hash, excluded.model_key, excluded.title, excluded.metadata,
         excluded.content, excluded.embedding)
  RETURNING 1
), pruned AS (
  DELETE FROM ${t} AS t USING docs d
  WHERE t.sink_name = $1 AND t.tenant_id = d.tenant_id AND t.document_id = d.document_id
    AND t.chunk_index >= d.chunk_count
  RETURNING 1
), acl_given AS (
  INSERT INTO ${ACL_TABLE} AS a (sink_name, tenant_id, document_id, acl, acl_version, document_version)
  SELECT $1, d.tenant_id, d.document_id, d.acl, d.acl_version, d.document_version FROM docs d
  WHERE d.acl IS NOT NULL
  ON CONFLICT (sink_name, tenant_id, document_id) DO UPDATE SET
    acl = CASE WHEN excluded.acl_version >= a.acl_version THEN excluded.acl ELSE a.acl END,
    acl_version = GREATEST(a.acl_version, excluded.acl_version),
    document_version = GREATEST(a.document_version, excluded.document_version),
    updated_at = now()
  WHERE a.acl_version < excluded.acl_version
     OR (a.acl_version = excluded.acl_version AND a.acl IS DISTINCT FROM excluded.acl)
     OR a.document_version < excluded.document_version
  RETURNING 1
), acl_kept AS (
  INSERT INTO ${ACL_TABLE} AS a (sink_name, tenant_id, document_id, acl, acl_version, document_version)
  SELECT $1, d.tenant_id, d.document_id, '{}', 0, d.document_version FROM docs d
  WHERE d.acl IS NULL
  ON CONFLICT (sink_name, tenant_id, document_id) DO UPDATE SET
    document_version = excluded.document_version, updated_at = now()
  WHERE a.document_version < excluded.document_version
  RETURNING 1
)
SELECT i.ord,
       CASE WHEN fenced.tenant_id IS NOT NULL THEN NULL WHEN p.tombstone THEN 'tombstoned' ELSE 'stale' END AS refused
FROM input i
LEFT JOIN fenced USING (tenant_id, document_id)
LEFT JOIN prior p USING (tenant_id, document_id)
ORDER BY i.ord`;
}

/**
 * Every chunk of the given documents from every given model table, and their ACL rows, in one
 * statement after `LOCK_DOCUMENTS` (atomic: a document is never left half-deleted). $1 sink name,
 * $2 tenant ids, $3 document ids, $4 delete versions (null: not fenced), $5 ACL versions (parallel
 * arrays, one entry per document), $6 the model keys of `tables`, in the same order.
 *
 * A versioned delete moves each model's fence to a tombstone when it lets it through
 * (`fenceDelete`: at least as new) and removes the chunks of the models it moved; the ACL row goes
 * only when every model let it through (a model holding a newer version keeps the document
 * searchable there) and no model outside `tables` holds a newer live version: the row is shared
 * by every model, and a delete the ledger sends to some models only must not blind the others. The tombstone keeps the newest ACL version of the removed ACL row. An
 * unversioned delete removes everything and leaves no tombstone. Returns one `FencedRow` per
 * document. Deleting what is not there is a no-op (and still leaves the tombstone).
 */
export function deleteDocumentsSql(tables: ChunkTableNames[]): string {
  const ctes = tables.map(
    (names, i) => `chunks_${i} AS (
  DELETE FROM ${names.qualified} AS c USING accepted r
  WHERE r.model_key = ($6::text[])[${i + 1}]
    AND c.sink_name = $1 AND c.tenant_id = r.tenant_id AND c.document_id = r.document_id
  RETURNING 1
)`,
  );
  return `WITH refs AS (
  SELECT DISTINCT ON (tenant_id, document_id) *
  FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) WITH ORDINALITY AS r(tenant_id, document_id, version, acl_version, ord)
  ORDER BY tenant_id, document_id, version DESC NULLS FIRST
), input AS (
  SELECT u.tenant_id, u.document_id, (u.ord - 1)::integer AS ord
  FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(tenant_id, document_id, ord)
), models AS (
  SELECT DISTINCT m AS model_key FROM unnest($6::text[]) AS m
), stored_acl AS (
  SELECT a.tenant_id, a.document_id, a.acl_version FROM ${ACL_TABLE} AS a JOIN refs r
    ON a.sink_name = $1 AND a.tenant_id = r.tenant_id AND a.document_id = r.document_id
), fenced AS (
  INSERT INTO ${FENCE_TABLE} AS f (sink_name, tenant_id, document_id, model_key, version, tombstone, acl_version)
  SELECT $1, r.tenant_id, r.document_id, m.model_key, r.version, true,
         GREATEST(coalesce(r.acl_version, 0), coalesce(s.acl_version, 0))
  FROM refs r CROSS JOIN models m LEFT JOIN stored_acl s USING (tenant_id, document_id)
  WHERE r.version IS NOT NULL
  ORDER BY 2, 3, 4
  ON CONFLICT (sink_name, tenant_id, document_id, model_key) DO UPDATE SET
    version = excluded.version, tombstone = true,
    acl_version = GREATEST(f.acl_version, excluded.acl_version), updated_at = now()
  WHERE f.version <= excluded.version
  RETURNING f.tenant_id, f.document_id, f.model_key
), accepted AS (
  SELECT tenant_id, document_id, model_key FROM fenced
  UNION ALL
  SELECT r.tenant_id, r.document_id, m.model_key FROM refs r CROSS JOIN models m WHERE r.version IS NULL
), verdict AS (
  SELECT r.tenant_id, r.document_id,
         (SELECT count(*) FROM accepted x WHERE x.tenant_id = r.tenant_id AND x.document_id = r.document_id)
           = (SELECT count(*) FROM models) AS whole,
         -- A model outside this delete that holds a newer version of the document still serves it.
         EXISTS (
           SELECT 1 FROM ${FENCE_TABLE} AS f
           WHERE f.sink_name = $1 AND f.tenant_id = r.tenant_id AND f.document_id = r.document_id
             AND NOT f.tombstone AND f.version > r.version AND f.model_key <> ALL ($6::text[])
         ) AS served_elsewhere
  FROM refs r
), ${[
    ...ctes,
    `acl AS (
  DELETE FROM ${ACL_TABLE} AS a USING verdict v
  WHERE v.whole AND NOT v.served_elsewhere
    AND a.sink_name = $1 AND a.tenant_id = v.tenant_id AND a.document_id = v.document_id
  RETURNING 1
)`,
  ].join(', ')}
SELECT i.ord, CASE WHEN v.whole THEN NULL ELSE 'stale' END AS refused
FROM input i JOIN verdict v USING (tenant_id, document_id)
ORDER BY i.ord`;
}

/**
 * New ACLs for documents, one statement after `LOCK_DOCUMENTS`. An ACL row is created when
 * missing: the ACL may arrive (priority lane) before the document's first content write, whose
 * `acl: null` then keeps it. Only raises acl_version; an ACL at or below a tombstone's ACL version
 * (`fenceAcl`) writes nothing, so a late revoke or grant cannot leave a row behind a delete.
 * $1 sink name, $2 jsonb array of {ord, tenant_id, document_id, acl, acl_version}. Returns the
 * refused writes as `FencedRow`s.
 */
export const SET_ACLS = `WITH w AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS w(ord integer, tenant_id text, document_id text, acl text[], acl_version bigint)
), blocked AS (
  SELECT w.ord, w.tenant_id, w.document_id FROM w
  WHERE EXISTS (
    SELECT 1 FROM ${FENCE_TABLE} AS f
    WHERE f.sink_name = $1 AND f.tenant_id = w.tenant_id AND f.document_id = w.document_id
      AND f.tombstone AND f.acl_version >= w.acl_version)
), written AS (
  INSERT INTO ${ACL_TABLE} AS a (sink_name, tenant_id, document_id, acl, acl_version, document_version)
  SELECT $1, w.tenant_id, w.document_id, w.acl, w.acl_version, 0
  FROM w WHERE w.ord NOT IN (SELECT ord FROM blocked)
  ON CONFLICT (sink_name, tenant_id, document_id) DO UPDATE SET
    acl = excluded.acl, acl_version = excluded.acl_version, updated_at = now()
  WHERE a.acl_version < excluded.acl_version
     OR (a.acl_version = excluded.acl_version AND a.acl IS DISTINCT FROM excluded.acl)
  RETURNING 1
)
SELECT ord, 'tombstoned' AS refused FROM blocked ORDER BY ord`;

/**
 * Session settings of a search transaction. Iterative index scans (pgvector 0.8) keep the HNSW
 * scan going until enough rows pass the tenant and ACL filters, so a selective filter still
 * returns topK; `relaxed_order` may return rows slightly out of order, so the query re-sorts.
 */
export function searchSettings(efSearch: number, maxScanTuples: number): string {
  checkInt('ef_search', efSearch, 1, 1000);
  checkInt('max_scan_tuples', maxScanTuples, 1, 2_147_483_647);
  return `BEGIN READ ONLY; SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = ${efSearch}; SET LOCAL hnsw.max_scan_tuples = ${maxScanTuples}`;
}

/**
 * kNN by cosine distance, always within one sink and tenant and restricted to documents whose ACL
 * row lists the principal (no row: nobody sees the document). Score = 1 - cosine distance, best
 * first. $1 query vector, $2 sink name, $3 tenant, $4 principal, $5 topK.
 */
export function searchSql(names: ChunkTableNames): string {
  return `WITH relaxed AS MATERIALIZED (
  SELECT c.document_id, c.chunk_index, c.content, c.embedding <=> $1::vector AS distance
  FROM ${names.qualified} AS c
  JOIN ${ACL_TABLE} AS a
    ON a.sink_name = c.sink_name AND a.tenant_id = c.tenant_id AND a.document_id = c.document_id
  WHERE c.sink_name = $2 AND c.tenant_id = $3 AND a.acl @> ARRAY[$4::text]
  ORDER BY distance
  LIMIT $5
)
SELECT document_id, chunk_index, content, 1 - distance AS score
FROM relaxed
ORDER BY distance, document_id, chunk_index`;
}

/**
 * Stored chunks of a tenant, or of one document when $3 is not null, with their document's ACL.
 * $1 sink name, $2 tenant, $3 document id or null.
 */
export function inspectSql(names: ChunkTableNames, withEmbeddings: boolean): string {
  return `SELECT c.tenant_id, c.document_id, c.chunk_index, c.document_version,
       coalesce(a.acl_version, 0) AS acl_version, coalesce(a.acl, '{}') AS acl, c.model_key, c.content_hash${
         withEmbeddings ? ', c.embedding::text AS embedding' : ''
       }
FROM ${names.qualified} AS c
LEFT JOIN ${ACL_TABLE} AS a
  ON a.sink_name = c.sink_name AND a.tenant_id = c.tenant_id AND a.document_id = c.document_id
WHERE c.sink_name = $1 AND c.tenant_id = $2 AND ($3::text IS NULL OR c.document_id = $3)
ORDER BY c.document_id, c.chunk_index`;
}

/**
 * One keyset page of a tenant's documents, in document id order (the database collation; the
 * local stack creates its databases with C, i.e. byte order). The version is the lowest version of
 * the document's chunks, so one stale chunk makes the document look stale to the reconciler.
 * $1 sink name, $2 tenant, $3 page size, then (when `after`) the last document id of the previous
 * page, then (when `buckets`) the bucket count and the wanted bucket ids (`bucketOfSql`).
 */
export function listDocumentsSql(names: ChunkTableNames, after: boolean, buckets = false): string {
  const afterParam = after ? ' AND c.document_id > $4' : '';
  const first = after ? 5 : 4;
  const bucketParam = buckets
    ? ` AND ${bucketOfSql('c.tenant_id', 'c.document_id', `$${first}::bigint`)} = ANY($${first + 1}::bigint[])`
    : '';
  return `SELECT g.document_id, g.document_version, g.chunk_indexes,
       coalesce(a.acl_version, 0) AS acl_version, coalesce(a.acl, '{}') AS acl
FROM (
  SELECT c.document_id, min(c.document_version) AS document_version,
         array_agg(c.chunk_index ORDER BY c.chunk_index) AS chunk_indexes
  FROM ${names.qualified} AS c
  WHERE c.sink_name = $1 AND c.tenant_id = $2${afterParam}${bucketParam}
  GROUP BY c.document_id
  ORDER BY c.document_id
  LIMIT $3
) AS g
LEFT JOIN ${ACL_TABLE} AS a ON a.sink_name = $1 AND a.tenant_id = $2 AND a.document_id = g.document_id
ORDER BY g.document_id`;
}

/**
 * Distinct tenants of a model table as a loose index scan (one index probe per tenant instead of
 * reading every chunk). $1 sink name.
 */
export function listTenantsSql(names: ChunkTableNames): string {
  const t = names.qualified;
  return `WITH RECURSIVE tenants AS (
  (SELECT tenant_id FROM ${t} WHERE sink_name = $1 ORDER BY tenant_id LIMIT 1)
  UNION ALL
  SELECT (SELECT c.tenant_id FROM ${t} AS c WHERE c.sink_name = $1 AND c.tenant_id > tenants.tenant_id
          ORDER BY c.tenant_id LIMIT 1)
  FROM tenants WHERE tenants.tenant_id IS NOT NULL
)
SELECT tenant_id FROM tenants WHERE tenant_id IS NOT NULL`;
}

export const HEALTH_CHECK = `SELECT extversion FROM pg_extension WHERE extname = 'vector'`;
