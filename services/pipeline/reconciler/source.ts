/**
 * The reconciler's reads of the source database: documents, ACLs and tombstones (the truth) and the
 * ledger (chunk counts, in the same database). Bucket checksums are computed inside PostgreSQL, so a
 * pass over a tenant moves a few hashes per bucket, not its documents; rows are only fetched for the
 * buckets that differ. The digest formulas are the ones in transforms/drift.ts, written in SQL.
 */
import type pg from 'pg';
import { classifyPgError } from '../../domain/pg-errors.ts';
import {
  bucketOfSql as bucketSql,
  DigestBuckets,
  digestOfSigned,
  type Digest64,
} from '../../domain/transforms/drift.ts';
const md5u64Sql = (text: string) => `('x' || substr(md5(${text}), 1, 16))::bit(64)::bigint`;
/** `heldDigest` (drift.ts) in SQL; `chunks` is the ledger's chunk count of the version, -1 unknown. */
const heldDigestSql = (key: string, version: string, aclDigest: string, chunks: string) =>
  md5u64Sql(
    `${key} || '|' || ${version} || '|' || lpad(to_hex(${aclDigest}), 16, '0') || '|' || ${chunks} || '|' || ${chunks}`,
  );

/** Source state of one document (a row of `documents`, or a tombstone without one). */
export interface SourceRow {
  tenant_id: string;
  document_id: string;
  version: number;
  acl_version: number;
  /** `hard_deleted` for a tombstone without a document row. */
  status: 'active' | 'archived' | 'deleted' | 'hard_deleted';
  acl: string[];
  /** Chunks the ledger recorded for exactly this version (null when it has not recorded it). */
  chunk_count: number | null;
  /** Changed after the settle cutoff: in flight, not judged. */
  pending: boolean;
}

export interface BucketSums {
  /** `heldDigest` of the documents the sink should hold, per bucket. */
  held: DigestBuckets;
  /** `stateDigest` of the searchable documents, per bucket. */
  state: DigestBuckets;
}

/** A pool, a client, or a ledger transaction: anything that runs a statement. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

async function query<R extends pg.QueryResultRow>(db: Queryable, sql: string, values: unknown[]): Promise<R[]> {
  try {
    return (await db.query<R>(sql, values)).rows;
  } catch (error) {
    throw classifyPgError(error, 'source database (reconciler)');
  }
}

/** The database clock (timestamps are compared with it, never with this machine's). */
export async function databaseNow(db: pg.Pool): Promise<string> {
  const rows = await query<{ now: string }>(db, 'SELECT clock_timestamp()::text AS now', []);
  return rows[0]!.now;
}

/** `at` minus `ms`, as timestamptz text. */
export async function minusMs(db: pg.Pool, at: string, ms: number): Promise<string> {
  const rows = await query<{ t: string }>(
    db,
    `SELECT ($1::timestamptz - make_interval(secs => $2::float8 / 1000))::text AS t`,
    [at, ms],
  );
  return rows[0]!.t;
}

/** Documents plus tombstones per tenant (the bucket count follows it). `tenants` null: every tenant. */
export async function tenantSizes(db: pg.Pool, tenants: string[] | null): Promise<Map<string, number>> {
  const rows = await query<{ tenant_id: string; n: string }>(
    db,
    `SELECT tenant_id, sum(n)::bigint AS n FROM (
       SELECT tenant_id, count(*) AS n FROM vecsync.documents
        WHERE $1::text[] IS NULL OR tenant_id = ANY($1) GROUP BY tenant_id
       UNION ALL
       SELECT tenant_id, count(*) FROM vecsync.document_tombstones
        WHERE $1::text[] IS NULL OR tenant_id = ANY($1) GROUP BY tenant_id
     ) AS x GROUP BY tenant_id`,
    [tenants],
  );
  return new Map(rows.map((r) => [r.tenant_id, Number(r.n)]));
}

/**
 * Per tenant and bucket: the held and state checksums and counts of the source, read in one
 * statement. A searchable document is held when the ledger's chunk count of its version is not 0;
 * an unknown chunk count digests as -1 (never equal to a sink document's).
 */
export async function sourceBucketSums(
  db: pg.Pool,
  buckets: Map<string, number>,
  ledger: { sinkName: string; modelKey: string },
): Promise<Map<string, BucketSums>> {
  const out = new Map<string, BucketSums>();
  for (const [tenant, n] of buckets) out.set(tenant, { held: new DigestBuckets(n), state: new DigestBuckets(n) });
  if (buckets.size === 0) return out;
  const key = `d.tenant_id || ':' || d.document_id`;
  const rows = await query<{
    tenant_id: string;
    bucket: string;
    held: string | null;
    held_n: number;
    state: string | null;
    state_n: number;
  }>(
    db,
    `WITH scope AS (
       SELECT * FROM unnest($1::text[], $2::int[]) AS s(tenant_id, buckets)
     ), acl AS (
       SELECT a.tenant_id, a.document_id, bit_xor(${md5u64Sql('a.principal')}) AS digest
         FROM vecsync.document_acl a JOIN scope USING (tenant_id)
        GROUP BY a.tenant_id, a.document_id
     ), docs AS (
       SELECT d.tenant_id, ${bucketSql('d.tenant_id', 'd.document_id', 'scope.buckets')} AS bucket,
              ${key} AS key, d.version, d.acl_version, coalesce(acl.digest, 0) AS acl_digest,
              CASE WHEN l.version = d.version AND NOT l.tombstone THEN l.chunk_count ELSE -1 END AS chunks
         FROM vecsync.documents d
         JOIN scope USING (tenant_id)
         LEFT JOIN acl ON acl.tenant_id = d.tenant_id AND acl.document_id = d.document_id
         LEFT JOIN vecsync.sync_state l
           ON l.sink_name = $3 AND l.model_key = $4 AND l.tenant_id = d.tenant_id AND l.document_id = d.document_id
        WHERE d.status = 'active'
     )
     SELECT tenant_id, bucket,
            bit_xor(${heldDigestSql('key', 'version', 'acl_digest', 'chunks')}) FILTER (WHERE chunks <> 0)::text AS held,
            (count(*) FILTER (WHERE chunks <> 0))::int AS held_n,
            bit_xor(${md5u64Sql(`key || '|' || version || '|' || acl_version`)})::text AS state,
            count(*)::int AS state_n
       FROM docs GROUP BY tenant_id, bucket`,
    [[...buckets.keys()], [...buckets.values()], ledger.sinkName, ledger.modelKey],
  );
  for (const r of rows) {
    const sums = out.get(r.tenant_id)!;
    const b = Number(r.bucket);
    sums.held.set(b, digestOfSigned(r.held ?? '0'), r.held_n);
    sums.state.set(b, digestOfSigned(r.state ?? '0'), r.state_n);
  }
  return out;
}

/** Per tenant: settled searchable documents, and documents (or tombstones) changed after `cutoff`. */
export async function settledCounts(
  db: pg.Pool,
  tenants: string[],
  cutoff: string,
): Promise<Map<string, { searchable: number; pending: number }>> {
  const rows = await query<{ tenant_id: string; searchable: string; pending: string }>(
    db,
    `SELECT tenant_id, sum(searchable)::bigint AS searchable, sum(pending)::bigint AS pending FROM (
       SELECT tenant_id, count(*) FILTER (WHERE status = 'active' AND updated_at <= $2) AS searchable,
              count(*) FILTER (WHERE updated_at > $2) AS pending
         FROM vecsync.documents WHERE tenant_id = ANY($1) GROUP BY tenant_id
       UNION ALL
       SELECT t.tenant_id, 0, count(*) FILTER (WHERE t.deleted_at > $2)
         FROM vecsync.document_tombstones t
        WHERE t.tenant_id = ANY($1)
          AND NOT EXISTS (SELECT 1 FROM vecsync.documents d WHERE d.tenant_id = t.tenant_id AND d.document_id = t.document_id)
        GROUP BY t.tenant_id
     ) AS x GROUP BY tenant_id`,
    [tenants, cutoff],
  );
  return new Map(rows.map((r) => [r.tenant_id, { searchable: Number(r.searchable), pending: Number(r.pending) }]));
}

/**
 * The ledger row of `r`'s document, as one primary-key probe per row. LIMIT 1 (the key is unique
 * anyway) keeps PostgreSQL from turning the lateral subquery into a join, whose plan would depend
 * on statistics: right after a tenant was bulk-loaded, before autovacuum analyzed it, a batch of
 * 500 keys took 1.2-1.6 s instead of about 6 ms. (`sourceDigests` reads a range of one tenant and
 * joins its ledger rows in bulk: probing each was slower there.)
 */
const ledgerProbe = (sink: string, model: string) => `LEFT JOIN LATERAL (
    SELECT l.version, l.tombstone, l.chunk_count FROM vecsync.sync_state l
     WHERE l.sink_name = ${sink} AND l.tenant_id = r.tenant_id AND l.document_id = r.document_id AND l.model_key = ${model}
     LIMIT 1
  ) l ON true`;

interface RawSourceRow {
  tenant_id: string;
  document_id: string;
  version: string;
  acl_version: string;
  status: SourceRow['status'];
  acl: string[];
  chunk_count: number | null;
  pending: boolean;
}

function toSourceRow(r: RawSourceRow): SourceRow {
  return { ...r, version: Number(r.version), acl_version: Number(r.acl_version) };
}

/**
 * One source document or tombstone of a differing bucket, as phase B first reads it: its versions
 * and, instead of its ACL and chunk count, the digest of what the sink should hold for it. A sink
 * document with the same digest holds exactly that (as in phase A, one level down), so only the
 * documents whose digests differ are read in full (`sourceByKeys`).
 */
export interface DigestRow {
  document_id: string;
  version: number;
  acl_version: number;
  status: SourceRow['status'];
  /** Changed after the settle cutoff: in flight, not judged. */
  pending: boolean;
  /**
   * `heldDigest` of what the sink should hold; null when it should hold nothing (not searchable, or
   * the ledger recorded 0 chunks for the version). Never equal to a sink document's when the ledger
   * has not recorded the version (chunk count -1).
   */
  held: Digest64 | null;
}

/** Some buckets of one tenant (of `buckets` buckets), for `sourceDigests`. */
export interface TenantBuckets {
  tenant: string;
  buckets: number;
  ids: readonly number[];
}

/**
 * Every source document and tombstone in the given buckets of several tenants, as digests, by
 * tenant: one statement, so the documents table is scanned once for all of them (the bucket is
 * computed in PostgreSQL), then the ACL of each row kept is read by index and the ledger rows of
 * these tenants joined.
 */
export async function sourceDigests(
  db: pg.Pool,
  wanted: readonly TenantBuckets[],
  cutoff: string,
  ledger: { sinkName: string; modelKey: string },
): Promise<Map<string, DigestRow[]>> {
  const out = new Map<string, DigestRow[]>(wanted.map((w) => [w.tenant, []]));
  const pairs = wanted.flatMap((w) => w.ids.map((id) => [w.tenant, w.buckets, id] as const));
  if (pairs.length === 0) return out;
  const bucket = (a: string) => bucketSql(`${a}.tenant_id`, `${a}.document_id`, 's.buckets');
  const found = await query<{
    tenant_id: string;
    document_id: string;
    version: string;
    acl_version: string;
    status: SourceRow['status'];
    pending: boolean;
    held: string | null;
  }>(
    db,
    `WITH wanted AS (
       SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) AS w(tenant_id, buckets, bucket)
     ), scope AS (
       SELECT DISTINCT tenant_id, buckets FROM wanted
     ), bucketed AS (
       -- Each row's bucket computed once; OFFSET 0 keeps PostgreSQL from folding it into the
       -- semi-join below as a filter evaluated for every (row, wanted bucket) pair of its tenant.
       SELECT d.tenant_id, d.document_id, d.version, d.acl_version, d.status, d.updated_at AS changed_at,
              ${bucket('d')} AS bucket
         FROM vecsync.documents d JOIN scope s ON s.tenant_id = d.tenant_id
        WHERE d.tenant_id = ANY($7::text[])
       UNION ALL
       SELECT t.tenant_id, t.document_id, t.version, t.acl_version, 'hard_deleted', t.deleted_at, ${bucket('t')}
         FROM vecsync.document_tombstones t JOIN scope s ON s.tenant_id = t.tenant_id
        WHERE t.tenant_id = ANY($7::text[])
          AND NOT EXISTS (SELECT 1 FROM vecsync.documents x WHERE x.tenant_id = t.tenant_id AND x.document_id = t.document_id)
       OFFSET 0
     ), rows AS (
       SELECT * FROM bucketed b WHERE (b.tenant_id, b.bucket) IN (SELECT tenant_id, bucket FROM wanted)
     ), held AS (
       SELECT r.*, CASE WHEN l.version = r.version AND NOT l.tombstone THEN l.chunk_count ELSE -1 END AS chunks
         FROM rows r
         LEFT JOIN vecsync.sync_state l
           ON l.sink_name = $5 AND l.model_key = $6 AND l.tenant_id = r.tenant_id AND l.document_id = r.document_id
          AND l.tenant_id = ANY($7::text[])
     )
     SELECT h.tenant_id, h.document_id, h.version, h.acl_version, h.status, h.changed_at > $4::timestamptz AS pending,
            CASE WHEN h.status = 'active' AND h.chunks <> 0 THEN ${heldDigestSql(
              `h.tenant_id || ':' || h.document_id`,
              'h.version',
              `coalesce((SELECT bit_xor(${md5u64Sql('a.principal')}) FROM vecsync.document_acl a
                          WHERE a.tenant_id = h.tenant_id AND a.document_id = h.document_id), 0)`,
              'h.chunks',
            )}::text END AS held
       FROM held h`,
    [
      pairs.map((p) => p[0]),
      pairs.map((p) => p[1]),
      pairs.map((p) => p[2]),
      cutoff,
      ledger.sinkName,
      ledger.modelKey,
      wanted.map((w) => w.tenant),
    ],
  );
  for (const r of found) {
    out.get(r.tenant_id)!.push({
      document_id: r.document_id,
      version: Number(r.version),
      acl_version: Number(r.acl_version),
      status: r.status,
      pending: r.pending,
      held: r.held === null ? null : digestOfSigned(r.held),
    });
  }
  return out;
}

/** The source rows of the given documents (absent: unknown to the source). */
export async function sourceByKeys(
  db: Queryable,
  refs: { tenant_id: string; document_id: string }[],
  cutoff: string,
  ledger: { sinkName: string; modelKey: string },
): Promise<Map<string, SourceRow>> {
  if (refs.length === 0) return new Map();
  // One primary-key probe per key and table (the document row, else its tombstone; its ACL; its
  // ledger row), whatever the statistics say: lateral subqueries with LIMIT are never turned into
  // joins.
  const rows = await query<RawSourceRow>(
    db,
    `WITH keys AS (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS k(tenant_id, document_id)),
     rows AS (
       SELECT k.tenant_id, k.document_id, s.version, s.acl_version, s.status, s.changed_at
         FROM keys k
         CROSS JOIN LATERAL (
           SELECT * FROM (
             SELECT d.version, d.acl_version, d.status, d.updated_at AS changed_at, 0 AS rank
               FROM vecsync.documents d WHERE d.tenant_id = k.tenant_id AND d.document_id = k.document_id
             UNION ALL
             SELECT t.version, t.acl_version, 'hard_deleted', t.deleted_at, 1
               FROM vecsync.document_tombstones t WHERE t.tenant_id = k.tenant_id AND t.document_id = k.document_id
           ) AS found ORDER BY rank LIMIT 1
         ) s
     )
     SELECT r.tenant_id, r.document_id, r.version, r.acl_version, r.status,
            coalesce((SELECT array_agg(a.principal ORDER BY a.principal) FROM vecsync.document_acl a
                       WHERE a.tenant_id = r.tenant_id AND a.document_id = r.document_id), '{}') AS acl,
            CASE WHEN l.version = r.version AND NOT l.tombstone THEN l.chunk_count END AS chunk_count,
            r.changed_at > $3::timestamptz AS pending
       FROM rows r
       ${ledgerProbe('$4', '$5')}`,
    [refs.map((r) => r.tenant_id), refs.map((r) => r.document_id), cutoff, ledger.sinkName, ledger.modelKey],
  );
  return new Map(rows.map((r) => [`${r.tenant_id}:${r.document_id}`, toSourceRow(r)]));
}
