-- What operators read about each vector index: `vecsync.vector_status`, per sink, embedding model
-- and tenant, plus the three tables that feed it and that only the pipeline writes:
--
-- - reconcile_results: the last reconcile pass per sink, model and tenant (drift %);
-- - sink_index_stats: the maintenance loop's latest sample of a sink's chunk table (the table lives
--   in the sink database, which a view here cannot read), and the counter baseline of the last
--   index build it ran;
-- - maintenance_jobs: ANALYZE and REINDEX work, queued by the maintenance loop and run by it on its
--   own connection, never inside a writer's transaction.
--
-- Idempotent (IF NOT EXISTS, DROP VIEW + CREATE VIEW), so applying it twice is harmless.

-- Up Migration

CREATE TABLE IF NOT EXISTS vecsync.reconcile_results (
  sink_name text NOT NULL,
  model_key text NOT NULL,
  tenant_id text NOT NULL,
  finished_at timestamptz NOT NULL,
  mode text NOT NULL,
  -- Settled searchable documents of the tenant in the source when the pass ran.
  source_documents bigint NOT NULL,
  -- Documents found missing, ghost, stale or with a mismatched ACL (orphan chunks and the
  -- count-mismatch flag are kept in `drift` but are not documents).
  drift_documents bigint NOT NULL,
  drift jsonb NOT NULL,
  PRIMARY KEY (sink_name, model_key, tenant_id)
);

CREATE TABLE IF NOT EXISTS vecsync.sink_index_stats (
  sink_name text NOT NULL,
  model_key text NOT NULL,
  table_name text NOT NULL,
  index_name text NOT NULL,
  -- The chunk table's oid in the sink database: a re-created table starts a new baseline.
  table_oid bigint NOT NULL,
  live_rows bigint NOT NULL,
  -- pg_stat n_tup_ins + n_tup_upd + n_tup_del of the chunk table when sampled, and when the index
  -- was last built by the maintenance loop (0: counted since the statistics began).
  changes_total bigint NOT NULL,
  changes_at_build bigint NOT NULL DEFAULT 0,
  modified_since_analyze bigint NOT NULL,
  last_analyze_at timestamptz,
  last_index_build_at timestamptz,
  sampled_at timestamptz NOT NULL,
  PRIMARY KEY (sink_name, model_key)
);

CREATE TABLE IF NOT EXISTS vecsync.maintenance_jobs (
  id bigserial PRIMARY KEY,
  sink_name text NOT NULL,
  model_key text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('analyze', 'reindex')),
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
  reason text NOT NULL,
  queued_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  -- The sink backend that ran the statement (pg_backend_pid and application_name).
  backend_pid integer,
  application_name text,
  error text
);
-- At most one pending job of a kind per index: queueing is ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX IF NOT EXISTS maintenance_jobs_pending_idx
  ON vecsync.maintenance_jobs (sink_name, model_key, kind) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS maintenance_jobs_sink_idx ON vecsync.maintenance_jobs (sink_name, state, id);

-- Backfill and re-embed progress of a (sink, model, tenant), read through dynamic SQL so this
-- migration does not depend on the embedding lifecycle tables (vecsync.backfills, vecsync.reembeds):
-- nulls while they do not exist. The latest backfill of the model for the tenant or for all
-- tenants; the latest re-embed of the sink towards the model.
CREATE OR REPLACE FUNCTION vecsync.vector_status_backfill(
  p_sink text, p_model_key text, p_tenant text,
  OUT backfill_state text, OUT backfill_done bigint, OUT backfill_total bigint, OUT reembed_state text)
  LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF to_regclass('vecsync.backfills') IS NOT NULL THEN
    EXECUTE $q$SELECT state, done, total FROM vecsync.backfills
                WHERE model_name || '.v' || model_version = $1 AND (tenant_id IS NULL OR tenant_id = $2)
                ORDER BY id DESC LIMIT 1$q$
      INTO backfill_state, backfill_done, backfill_total USING p_model_key, p_tenant;
  END IF;
  IF to_regclass('vecsync.reembeds') IS NOT NULL THEN
    EXECUTE $q$SELECT state FROM vecsync.reembeds
                WHERE sink_name = $1 AND to_name || '.v' || to_version = $2
                ORDER BY id DESC LIMIT 1$q$
      INTO reembed_state USING p_sink, p_model_key;
  END IF;
END
$$;

DROP VIEW IF EXISTS vecsync.vector_status;
-- One row per (sink, model, tenant) the ledger or a reconcile pass knows.
--
-- - oldest_unapplied_*: outbox events of the tenant (upserts of this model, deletes and ACL changes
--   of any) whose version this sink's ledger does not hold yet. Per sink, so a secondary sink that
--   lags shows it even after the primary marked the outbox row processed.
-- - index_*: the chunk table is shared by every tenant of the sink, so these repeat per tenant;
--   documents_changed_since_build is this tenant's share (ledger rows applied since the build).
-- - model_state: the model's registry state (active, backfilling, ready, retired); backfill_* and
--   reembed_state: see vecsync.vector_status_backfill (null without the lifecycle tables).
CREATE VIEW vecsync.vector_status AS
WITH ledger AS (
  SELECT sink_name, model_key, tenant_id,
         count(*) FILTER (WHERE NOT tombstone AND version > 0) AS documents,
         max(applied_at) AS last_applied_at
    FROM vecsync.sync_state
   GROUP BY sink_name, model_key, tenant_id
), keys AS (
  SELECT sink_name, model_key, tenant_id FROM ledger
  UNION
  SELECT sink_name, model_key, tenant_id FROM vecsync.reconcile_results
), jobs AS (
  SELECT sink_name, model_key,
         count(*) FILTER (WHERE state = 'queued') AS queued,
         count(*) FILTER (WHERE state = 'running') AS running,
         max(finished_at) FILTER (WHERE state = 'failed') AS last_failed_at
    FROM vecsync.maintenance_jobs
   WHERE state IN ('queued', 'running', 'failed')
   GROUP BY sink_name, model_key
)
SELECT k.sink_name,
       k.model_key,
       k.tenant_id,
       coalesce(l.documents, 0) AS documents,
       l.last_applied_at,
       u.oldest AS oldest_unapplied_at,
       coalesce(extract(epoch FROM now() - u.oldest), 0)::float8 AS oldest_unapplied_age_seconds,
       coalesce(u.events, 0) AS unapplied_events,
       s.last_analyze_at,
       s.last_index_build_at,
       CASE WHEN s.sink_name IS NULL THEN NULL
            ELSE greatest(s.changes_total - s.changes_at_build, 0) END AS index_rows_changed_since_build,
       s.modified_since_analyze AS index_rows_modified_since_analyze,
       s.live_rows AS index_live_rows,
       s.sampled_at AS index_sampled_at,
       (SELECT count(*) FROM vecsync.sync_state c
         WHERE c.sink_name = k.sink_name AND c.model_key = k.model_key AND c.tenant_id = k.tenant_id
           AND c.applied_at > coalesce(s.last_index_build_at, '-infinity')) AS documents_changed_since_build,
       coalesce(j.queued, 0) AS maintenance_queued,
       coalesce(j.running, 0) AS maintenance_running,
       j.last_failed_at AS maintenance_last_failed_at,
       r.finished_at AS last_reconcile_at,
       r.drift_documents,
       CASE WHEN r.sink_name IS NULL THEN NULL
            ELSE round(100.0 * r.drift_documents / greatest(r.source_documents, 1), 3) END AS drift_pct,
       m.state AS model_state,
       b.backfill_state,
       b.backfill_done,
       b.backfill_total,
       b.reembed_state
  FROM keys k
  LEFT JOIN ledger l USING (sink_name, model_key, tenant_id)
  LEFT JOIN vecsync.reconcile_results r USING (sink_name, model_key, tenant_id)
  LEFT JOIN vecsync.sink_index_stats s ON s.sink_name = k.sink_name AND s.model_key = k.model_key
  LEFT JOIN jobs j ON j.sink_name = k.sink_name AND j.model_key = k.model_key
  LEFT JOIN vecsync.embedding_models m ON m.name || '.v' || m.version = k.model_key
  LEFT JOIN LATERAL (
    SELECT min(o.created_at) AS oldest, count(*) AS events
      FROM vecsync.vector_sync_outbox o
     WHERE o.tenant_id = k.tenant_id
       AND (o.operation <> 'upsert' OR o.embedding_model || '.v' || o.embedding_version = k.model_key)
       AND NOT EXISTS (
         SELECT 1 FROM vecsync.sync_state x
          WHERE x.sink_name = k.sink_name AND x.tenant_id = o.tenant_id AND x.document_id = o.document_id
            AND x.model_key = k.model_key
            AND CASE WHEN o.operation = 'acl' THEN x.acl_version >= o.acl_version
                     ELSE x.version >= o.document_version END)
  ) u ON true
  CROSS JOIN LATERAL vecsync.vector_status_backfill(k.sink_name, k.model_key, k.tenant_id) b;

COMMENT ON VIEW vecsync.vector_status IS
  'Per sink, embedding model and tenant: freshness, index maintenance, drift and re-embed state.';

-- Down Migration

DROP VIEW IF EXISTS vecsync.vector_status;
DROP FUNCTION IF EXISTS vecsync.vector_status_backfill(text, text, text);
DROP TABLE IF EXISTS vecsync.maintenance_jobs;
DROP TABLE IF EXISTS vecsync.sink_index_stats;
DROP TABLE IF EXISTS vecsync.reconcile_results;
