-- The ACL is kept per document and joined at query time: a revoke rewrites one row, not every
-- chunk, and never touches the HNSW index of a chunk table.

-- Up Migration

CREATE TABLE vecsync_sink.document_acl (
  sink_name text NOT NULL,
  tenant_id text NOT NULL,
  document_id text NOT NULL,
  acl text[] NOT NULL DEFAULT '{}',
  acl_version bigint NOT NULL,
  document_version bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink_name, tenant_id, document_id)
);
-- "which documents may principal P see": acl && ARRAY[P]
CREATE INDEX document_acl_principals_idx ON vecsync_sink.document_acl USING gin (acl);

-- Down Migration

DROP TABLE IF EXISTS vecsync_sink.document_acl;
