-- The sink's own fence: per sink, document and model, the version of the last content write or
-- delete the sink applied, and whether it was a delete (a tombstone, with the newest ACL version
-- the sink held then). Every chunk and ACL write of the pgvector sink is conditional on it, in the
-- sink's own transaction, so a write older than what the sink holds changes nothing, even when it
-- arrives after the ledger lock that should have kept it out was lost. Tombstones stay: they are
-- what keeps a late write of a deleted document out.

-- Up Migration

CREATE TABLE IF NOT EXISTS vecsync_sink.document_fence (
  sink_name text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  model_key text NOT NULL,
  version bigint NOT NULL,
  tombstone boolean NOT NULL DEFAULT false,
  acl_version bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink_name, tenant_id, document_id, model_key)
);

-- Down Migration

DROP TABLE IF EXISTS vecsync_sink.document_fence;
