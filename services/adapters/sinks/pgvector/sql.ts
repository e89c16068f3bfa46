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
import { ACL_TABLE, SINK_SCHEMA, tableComment, type ChunkTableNames } from './naming.ts';

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
 * The whole batch in ONE statement (one round trip, one transaction). Parameters:
 *
 * - $1 sink name, $2 model key
 * - $3 documents, jsonb array of {ord, tenant_id, document_id, document_version, chunk_count, title,
 *   metadata, acl (text[] or null), acl_version}
 * - $4..$8 chunks, parallel arrays: document ord, chunk index, content, content hash, embeddings
 *   (`vector[]`, sent in binary)
 *
 * CTEs: `upserted` writes every chunk (a replay that changes nothing writes no new tuple, so HNSW
 * sees no churn), `pruned` removes chunks at or beyond each document's chunk count (no orphans when
 * a document shrinks), `acl_given`/`acl_kept` upsert the document's ACL row, only ever raising its
 * acl_version. A document written with `acl: null` keeps its stored ACL; when it has none yet it
 * gets an empty one (visible to nobody, acl_version 0) so every stored document has a row.
 * All CTEs see the same snapshot; they never touch the same row (chunk indexes are validated to
 * be below the chunk count, documents are unique within a statement).
 */
export function writeDocumentsSql(names: ChunkTableNames, dimensions: number): string {
  checkInt('dimensions', dimensions, 1, MAX_DIMENSIONS);
  const t = names.qualified;
  return `WITH docs AS (
  SELECT * FROM jsonb_to_recordset($3::jsonb) AS d(
    ord integer, tenant_id text, document_id text, document_version bigint, chunk_count integer,
    title text, metadata jsonb, acl text[], acl_version bigint)
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
SELECT (SELECT count(*) FROM upserted)::integer AS upserted,
       (SELECT count(*) FROM pruned)::integer AS pruned,
       ((SELECT count(*) FROM acl_given) + (SELECT count(*) FROM acl_kept))::integer AS acl_rows`;
}

/**
 * Every chunk of the given documents from every given model table, and their ACL rows, in one
 * statement (atomic: a document is never left half-deleted). $1 sink name, $2 tenant ids,
 * $3 document ids (parallel arrays). Deleting what is not there is a no-op.
 */
export function deleteDocumentsSql(tables: ChunkTableNames[]): string {
  const ctes = tables.map(
    (names, i) => `chunks_${i} AS (
  DELETE FROM ${names.qualified} AS c USING refs r
  WHERE c.sink_name = $1 AND c.tenant_id = r.tenant_id AND c.document_id = r.document_id
  RETURNING 1
)`,
  );
  const counts = tables.map((_, i) => `(SELECT count(*) FROM chunks_${i})`);
  return `WITH refs AS (
  SELECT DISTINCT * FROM unnest($2::text[], $3::text[]) AS r(tenant_id, document_id)
), ${[
    ...ctes,
    `acl AS (
  DELETE FROM ${ACL_TABLE} AS a USING refs r
  WHERE a.sink_name = $1 AND a.tenant_id = r.tenant_id AND a.document_id = r.document_id
  RETURNING 1
)`,
  ].join(', ')}
SELECT (${counts.length > 0 ? counts.join(' + ') : '0'})::integer AS chunks, (SELECT count(*) FROM acl)::integer AS acl_rows`;
}

/**
 * New ACLs for documents, one statement. An ACL row is created when missing: the ACL may arrive
 * (priority lane) before the document's first content write, whose `acl: null` then keeps it.
 * Only raises acl_version. $1 sink name, $2 jsonb array of {tenant_id, document_id, acl, acl_version}.
 */
export const SET_ACLS = `INSERT INTO ${ACL_TABLE} AS a (sink_name, tenant_id, document_id, acl, acl_version, document_version)
SELECT $1, w.tenant_id, w.document_id, w.acl, w.acl_version, 0
FROM jsonb_to_recordset($2::jsonb) AS w(tenant_id text, document_id text, acl text[], acl_version bigint)
ON CONFLICT (sink_name, tenant_id, document_id) DO UPDATE SET
  acl = excluded.acl, acl_version = excluded.acl_version, updated_at = now()
WHERE a.acl_version < excluded.acl_version
   OR (a.acl_version = excluded.acl_version AND a.acl IS DISTINCT FROM excluded.acl)`;

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
 * $1 sink name, $2 tenant, $3 page size, $4 the last document id of the previous page (`after`).
 */
export function listDocumentsSql(names: ChunkTableNames, after: boolean): string {
  return `SELECT g.document_id, g.document_version, g.chunk_indexes,
       coalesce(a.acl_version, 0) AS acl_version, coalesce(a.acl, '{}') AS acl
FROM (
  SELECT c.document_id, min(c.document_version) AS document_version,
         array_agg(c.chunk_index ORDER BY c.chunk_index) AS chunk_indexes
  FROM ${names.qualified} AS c
  WHERE c.sink_name = $1 AND c.tenant_id = $2${after ? ' AND c.document_id > $4' : ''}
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
