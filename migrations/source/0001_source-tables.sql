-- Source-of-truth tables (schema vecsync). The triggers that keep versions and write the
-- outbox in the writer's own transaction live in 0002; the publication Debezium reads in 0003.
-- Every object is schema-qualified: node-pg-migrate sets search_path, the application may not.

-- Up Migration

CREATE TABLE vecsync.documents (
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  title text,
  body text,
  language text,
  status text NOT NULL DEFAULT 'active',
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  restricted jsonb,
  version bigint NOT NULL DEFAULT 0,
  acl_version bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, document_id),
  CONSTRAINT documents_status_check CHECK (status IN ('active', 'archived', 'deleted')),
  -- The document key `tenant:document` is split at the first ':', so a tenant id cannot contain one.
  CONSTRAINT documents_tenant_id_check CHECK (tenant_id <> '' AND strpos(tenant_id, ':') = 0),
  CONSTRAINT documents_document_id_check CHECK (document_id <> ''),
  CONSTRAINT documents_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
COMMENT ON TABLE vecsync.documents IS
  'Source of truth. version and acl_version are set by triggers; restricted never leaves PostgreSQL.';

-- No foreign key to documents: ACL rows may be written before their document exists (the
-- document's first event then carries them). A hard DELETE of the document removes its rows.
CREATE TABLE vecsync.document_acl (
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  principal text NOT NULL,
  PRIMARY KEY (tenant_id, document_id, principal),
  CONSTRAINT document_acl_principal_check CHECK (principal <> '')
);

CREATE TABLE vecsync.document_tombstones (
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  version bigint NOT NULL,
  acl_version bigint NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, document_id)
);
COMMENT ON TABLE vecsync.document_tombstones IS
  'Version of each hard delete; a re-inserted document continues above it.';

CREATE TABLE vecsync.metadata_allowlist (
  key text PRIMARY KEY
);
COMMENT ON TABLE vecsync.metadata_allowlist IS
  'Metadata keys that may leave PostgreSQL; synced from VECSYNC_METADATA_ALLOWLIST by vecsync migrate.';

CREATE TABLE vecsync.vector_sync_outbox (
  id bigserial PRIMARY KEY,
  event_key text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  operation text NOT NULL,
  lane text NOT NULL,
  embedding_model text,
  embedding_version integer,
  document_version bigint NOT NULL,
  acl_version bigint NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'queued',
  attempts integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  error text,
  CONSTRAINT vector_sync_outbox_operation_check CHECK (operation IN ('upsert', 'delete', 'acl')),
  CONSTRAINT vector_sync_outbox_lane_check CHECK (lane IN ('priority', 'live', 'bulk')),
  CONSTRAINT vector_sync_outbox_status_check CHECK (status IN ('queued', 'processed', 'failed')),
  -- Upserts are per embedding model; deletes and ACL changes apply to every model's index.
  CONSTRAINT vector_sync_outbox_model_check CHECK (
    (operation = 'upsert') = (embedding_model IS NOT NULL)
    AND (embedding_model IS NULL) = (embedding_version IS NULL)
  )
);
COMMENT ON TABLE vecsync.vector_sync_outbox IS
  'Transactional outbox. Debezium captures INSERTs only; status write-back and pruning produce no events.';
-- "What is queued or failed, and how old is the oldest", per lane.
CREATE INDEX vector_sync_outbox_status_created_idx ON vecsync.vector_sync_outbox (status, lane, created_at);
CREATE INDEX vector_sync_outbox_pending_idx ON vecsync.vector_sync_outbox (created_at)
  WHERE status <> 'processed';
CREATE INDEX vector_sync_outbox_document_idx ON vecsync.vector_sync_outbox (tenant_id, document_id, id);

CREATE TABLE vecsync.state_outbox (
  id bigserial PRIMARY KEY,
  event_key text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vecsync.state_outbox IS
  'Insert-only: latest state of each changed document, routed to the compacted state topic.';
CREATE INDEX state_outbox_event_key_idx ON vecsync.state_outbox (event_key, id);
CREATE INDEX state_outbox_created_idx ON vecsync.state_outbox (created_at);

CREATE TABLE vecsync.embedding_models (
  name text NOT NULL,
  version integer NOT NULL,
  dimensions integer NOT NULL,
  chunker text NOT NULL,
  chunker_version integer NOT NULL,
  chunk_size integer NOT NULL,
  chunk_overlap integer NOT NULL,
  state text NOT NULL DEFAULT 'active',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version),
  CONSTRAINT embedding_models_state_check CHECK (state IN ('active', 'backfilling', 'retired')),
  CONSTRAINT embedding_models_dimensions_check CHECK (dimensions > 0),
  CONSTRAINT embedding_models_chunking_check CHECK (chunk_size > 0 AND chunk_overlap >= 0 AND chunk_overlap < chunk_size)
);

-- The ledger: what each sink holds, per document and embedding model.
CREATE TABLE vecsync.sync_state (
  sink_name text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  model_key text NOT NULL,
  version bigint NOT NULL DEFAULT 0,
  acl_version bigint NOT NULL DEFAULT 0,
  chunk_count integer NOT NULL DEFAULT 0,
  content_hash text,
  tombstone boolean NOT NULL DEFAULT false,
  applied_at timestamptz,
  PRIMARY KEY (sink_name, tenant_id, document_id, model_key)
);
CREATE INDEX sync_state_tenant_idx ON vecsync.sync_state (sink_name, model_key, tenant_id);

CREATE TABLE vecsync.embedding_cache (
  model_key text NOT NULL,
  content_hash bytea NOT NULL,
  embedding bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model_key, content_hash)
);
COMMENT ON COLUMN vecsync.embedding_cache.embedding IS 'float32 little-endian';

CREATE TABLE vecsync.heartbeat (
  id integer PRIMARY KEY,
  ts timestamptz NOT NULL
);
COMMENT ON TABLE vecsync.heartbeat IS
  'Written by Debezium''s heartbeat.action.query so the replication slot advances on an idle database.';

-- Down Migration

DROP TABLE IF EXISTS vecsync.heartbeat;
DROP TABLE IF EXISTS vecsync.embedding_cache;
DROP TABLE IF EXISTS vecsync.sync_state;
DROP TABLE IF EXISTS vecsync.embedding_models;
DROP TABLE IF EXISTS vecsync.state_outbox;
DROP TABLE IF EXISTS vecsync.vector_sync_outbox;
DROP TABLE IF EXISTS vecsync.metadata_allowlist;
DROP TABLE IF EXISTS vecsync.document_tombstones;
DROP TABLE IF EXISTS vecsync.document_acl;
DROP TABLE IF EXISTS vecsync.documents;
