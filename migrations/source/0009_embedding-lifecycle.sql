-- The embedding lifecycle: which embedder made each model, which model each sink serves,
-- operator-controlled backfills (cursor in PostgreSQL), blue/green re-embeds, the importance rule
-- and the golden retrieval set.

-- Up Migration

-- Which embedder provider produced a model (hashing, openai, minilm, ...): search and the re-embed
-- compare must embed a query with the same provider as the index they read.
-- A registration that does not say (older `vecsync migrate`, plain SQL) gets it from the name.
ALTER TABLE vecsync.embedding_models ADD COLUMN IF NOT EXISTS embedder text;
CREATE OR REPLACE FUNCTION vecsync.embedder_of_model(p_name text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN p_name LIKE 'hashing%' THEN 'hashing'
              WHEN p_name LIKE 'minilm%' THEN 'minilm'
              ELSE 'openai' END;
UPDATE vecsync.embedding_models SET embedder = vecsync.embedder_of_model(name) WHERE embedder IS NULL;
CREATE OR REPLACE FUNCTION vecsync.embedding_models_default_embedder() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  NEW.embedder := coalesce(NEW.embedder, vecsync.embedder_of_model(NEW.name));
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS embedding_models_default_embedder ON vecsync.embedding_models;
CREATE TRIGGER embedding_models_default_embedder BEFORE INSERT ON vecsync.embedding_models
  FOR EACH ROW EXECUTE FUNCTION vecsync.embedding_models_default_embedder();

-- 'ready': backfilled and waiting for a cutover (still kept in step with live changes).
ALTER TABLE vecsync.embedding_models DROP CONSTRAINT IF EXISTS embedding_models_state_check;
ALTER TABLE vecsync.embedding_models ADD CONSTRAINT embedding_models_state_check
  CHECK (state IN ('active', 'backfilling', 'ready', 'retired'));

-- The model each sink serves (the one search reads). One row per sink, so a cutover or a rollback
-- is one UPDATE: atomic for every reader. A sink without a row serves its configured model.
CREATE TABLE IF NOT EXISTS vecsync.model_serving (
  sink_name text PRIMARY KEY,
  model_name text NOT NULL,
  model_version integer NOT NULL,
  switched_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (model_name, model_version) REFERENCES vecsync.embedding_models (name, version)
);

-- The operator's importance rule: larger is more important, 0 is ordinary. Backfills and re-embeds
-- run in importance order, then oldest first; important content updates take the embedder's
-- important lane. Redefine it with CREATE OR REPLACE (a column, a metadata key, a join ...).
-- Default: the numeric metadata key `importance` (clamped to 0..1000).
CREATE OR REPLACE FUNCTION vecsync.document_importance(d vecsync.documents) RETURNS integer
  LANGUAGE sql STABLE PARALLEL SAFE
  RETURN CASE WHEN jsonb_typeof(d.metadata -> 'importance') = 'number'
              THEN greatest(0, least(1000, (d.metadata ->> 'importance')::numeric))::integer
              ELSE 0 END;

-- Upserts of important documents carry their importance (ordinary ones are unchanged), so the
-- embedder can put them ahead of other live work. The payload stays bounded as in 0008 (a large
-- document travels by reference, never inline): only the importance is added.
CREATE OR REPLACE FUNCTION vecsync.document_payload(d vecsync.documents, p_model_name text, p_model_version integer)
  RETURNS jsonb LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT jsonb_build_object(
      'op', 'upsert',
      'tenant_id', d.tenant_id,
      'document_id', d.document_id,
      'version', d.version,
      'acl_version', d.acl_version,
      'language', d.language,
      'status', d.status,
      'content_hash', vecsync.content_hash(d.title, d.body),
      'model', jsonb_build_object('name', p_model_name, 'version', p_model_version),
      'created_at', now())
    || CASE WHEN x.bytes <= vecsync.payload_inline_limit()
         THEN jsonb_build_object('acl', x.acl, 'title', d.title, 'body', d.body, 'metadata', x.metadata)
         ELSE jsonb_build_object('acl', NULL, 'title', NULL, 'body', NULL, 'metadata', NULL, 'inline', false,
                                 'body_bytes', coalesce(octet_length(d.body), 0),
                                 'metadata_bytes', octet_length(x.metadata::text))
       END
    || CASE WHEN vecsync.document_importance(d) > 0
            THEN jsonb_build_object('importance', vecsync.document_importance(d))
            ELSE '{}'::jsonb END
    FROM (SELECT a.acl, m.metadata,
                 coalesce(octet_length(d.body), 0) + coalesce(octet_length(d.title), 0)
                   + octet_length(m.metadata::text) + octet_length(a.acl::text) AS bytes
            FROM (SELECT vecsync.current_acl(d.tenant_id, d.document_id) AS acl) a,
                 (SELECT vecsync.allowed_metadata(d.metadata) AS metadata) m) x;
END;

CREATE TABLE IF NOT EXISTS vecsync.backfills (
  id bigserial PRIMARY KEY,
  model_name text NOT NULL,
  model_version integer NOT NULL,
  tenant_id text,
  state text NOT NULL DEFAULT 'running',
  -- Documents per second the backfill is paced to (its planned rate).
  rate integer NOT NULL,
  total bigint NOT NULL DEFAULT 0,
  done bigint NOT NULL DEFAULT 0,
  -- The last plan position whose outbox rows are committed (the cursor).
  position bigint NOT NULL DEFAULT 0,
  -- Set by the process running the backfill, renewed every batch: a resume takes over a lease
  -- that is not renewed (its runner was killed).
  runner text,
  lease_until timestamptz,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CONSTRAINT backfills_state_check CHECK (state IN ('running', 'paused', 'done', 'failed')),
  CONSTRAINT backfills_rate_check CHECK (rate > 0),
  FOREIGN KEY (model_name, model_version) REFERENCES vecsync.embedding_models (name, version) ON DELETE CASCADE
);
COMMENT ON TABLE vecsync.backfills IS
  'vecsync backfill: bulk-lane re-enqueues of every active document for one model; position is the cursor into backfill_items.';

-- The plan of a backfill, fixed at start: documents in importance order, then oldest first. A
-- stable plan makes the cursor one integer, and `total` exact.
CREATE TABLE IF NOT EXISTS vecsync.backfill_items (
  backfill_id bigint NOT NULL REFERENCES vecsync.backfills (id) ON DELETE CASCADE,
  position bigint NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  PRIMARY KEY (backfill_id, position)
);

CREATE TABLE IF NOT EXISTS vecsync.reembeds (
  id bigserial PRIMARY KEY,
  sink_name text NOT NULL,
  from_name text NOT NULL,
  from_version integer NOT NULL,
  to_name text NOT NULL,
  to_version integer NOT NULL,
  state text NOT NULL DEFAULT 'backfilling',
  backfill_id bigint REFERENCES vecsync.backfills (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  cutover_at timestamptz,
  rolled_back_at timestamptz,
  retired_at timestamptz,
  CONSTRAINT reembeds_state_check CHECK (state IN ('backfilling', 'ready', 'serving', 'rolled_back', 'retired'))
);
CREATE INDEX IF NOT EXISTS reembeds_sink_idx ON vecsync.reembeds (sink_name, id);

-- The golden set: per tenant, queries and the document each should find. `principal` is who
-- searches (null: the first principal of the expected document's ACL).
CREATE TABLE IF NOT EXISTS vecsync.golden_queries (
  tenant_id text NOT NULL,
  query text NOT NULL,
  expected_document_id text NOT NULL,
  principal text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, query, expected_document_id)
);

-- Down Migration

DROP TABLE IF EXISTS vecsync.golden_queries;
DROP TABLE IF EXISTS vecsync.reembeds;
DROP TABLE IF EXISTS vecsync.backfill_items;
DROP TABLE IF EXISTS vecsync.backfills;
-- Back to 0008's bounded payload (without the importance).
CREATE OR REPLACE FUNCTION vecsync.document_payload(d vecsync.documents, p_model_name text, p_model_version integer)
  RETURNS jsonb LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT jsonb_build_object(
      'op', 'upsert',
      'tenant_id', d.tenant_id,
      'document_id', d.document_id,
      'version', d.version,
      'acl_version', d.acl_version,
      'language', d.language,
      'status', d.status,
      'content_hash', vecsync.content_hash(d.title, d.body),
      'model', jsonb_build_object('name', p_model_name, 'version', p_model_version),
      'created_at', now())
    || CASE WHEN x.bytes <= vecsync.payload_inline_limit()
         THEN jsonb_build_object('acl', x.acl, 'title', d.title, 'body', d.body, 'metadata', x.metadata)
         ELSE jsonb_build_object('acl', NULL, 'title', NULL, 'body', NULL, 'metadata', NULL, 'inline', false,
                                 'body_bytes', coalesce(octet_length(d.body), 0),
                                 'metadata_bytes', octet_length(x.metadata::text))
       END
    FROM (SELECT a.acl, m.metadata,
                 coalesce(octet_length(d.body), 0) + coalesce(octet_length(d.title), 0)
                   + octet_length(m.metadata::text) + octet_length(a.acl::text) AS bytes
            FROM (SELECT vecsync.current_acl(d.tenant_id, d.document_id) AS acl) a,
                 (SELECT vecsync.allowed_metadata(d.metadata) AS metadata) m) x;
END;
DROP FUNCTION IF EXISTS vecsync.document_importance(vecsync.documents);
DROP TABLE IF EXISTS vecsync.model_serving;
UPDATE vecsync.embedding_models SET state = 'active' WHERE state = 'ready';
ALTER TABLE vecsync.embedding_models DROP CONSTRAINT IF EXISTS embedding_models_state_check;
ALTER TABLE vecsync.embedding_models ADD CONSTRAINT embedding_models_state_check
  CHECK (state IN ('active', 'backfilling', 'retired'));
DROP TRIGGER IF EXISTS embedding_models_default_embedder ON vecsync.embedding_models;
DROP FUNCTION IF EXISTS vecsync.embedding_models_default_embedder();
DROP FUNCTION IF EXISTS vecsync.embedder_of_model(text);
ALTER TABLE vecsync.embedding_models DROP COLUMN IF EXISTS embedder;
