-- Bounded outbox payloads: no single document, ACL or metadata can stop change capture.
--
-- Kafka Connect's producer kills the connector task on a record over its request limit, and a
-- restart re-reads the same WAL record, so one oversized outbox payload stopped CDC for every
-- tenant. The embedder now reads the document itself (title, body, metadata, ACL) from this
-- database at embed time (claim check), so upsert payloads need not carry those unbounded columns:
-- over 256 KiB they carry the versions, the content hash and the sizes only. ACL events and state rows keep
-- the ACL (a permission change must not need a second read to be safe), bounded by
-- vecsync.payload_acl: an ACL whose JSON is over 8 MiB is published as [] with acl_overflow=true,
-- so the document becomes visible to nobody (fail closed) instead of stopping CDC. The connector
-- and the lane/state topics allow 16 MiB records, so the largest bounded payload always fits.
--
-- Also: vecsync.service_pauses, where a running service records that it is paused because a
-- dependency refused its credentials (401/403), so `vecsync status` can show it.

-- Up Migration

CREATE OR REPLACE FUNCTION vecsync.payload_acl_limit() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 8 * 1024 * 1024;

CREATE OR REPLACE FUNCTION vecsync.payload_acl(p_tenant_id text, p_document_id text) RETURNS jsonb
  LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE WHEN octet_length(a.acl::text) <= vecsync.payload_acl_limit() THEN a.acl ELSE '[]'::jsonb END
    FROM (SELECT vecsync.current_acl(p_tenant_id, p_document_id) AS acl) a;
END;
COMMENT ON FUNCTION vecsync.payload_acl(text, text) IS
  'The ACL as published in acl events and state rows: [] (nobody) when its JSON is over payload_acl_limit().';

CREATE OR REPLACE FUNCTION vecsync.acl_overflows(p_tenant_id text, p_document_id text) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  RETURN octet_length(vecsync.current_acl(p_tenant_id, p_document_id)::text) > vecsync.payload_acl_limit();

CREATE OR REPLACE FUNCTION vecsync.payload_inline_limit() RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 256 * 1024;

-- Small documents keep the inline shape of 0002 (title, body, metadata, ACL), so consumers of that
-- shape keep working; the embedder reads the source either way. Over payload_inline_limit() the
-- payload carries null for those four and the sizes instead (`inline: false`).
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

CREATE OR REPLACE FUNCTION vecsync.acl_payload(d vecsync.documents) RETURNS jsonb
  LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'op', 'acl',
    'tenant_id', d.tenant_id,
    'document_id', d.document_id,
    'version', d.version,
    'acl_version', d.acl_version,
    'acl', vecsync.payload_acl(d.tenant_id, d.document_id),
    'created_at', now())
    || CASE WHEN vecsync.acl_overflows(d.tenant_id, d.document_id)
         THEN jsonb_build_object('acl_overflow', true) ELSE '{}'::jsonb END;

CREATE OR REPLACE FUNCTION vecsync.state_payload(d vecsync.documents) RETURNS jsonb
  LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'tenant_id', d.tenant_id,
    'document_id', d.document_id,
    'version', d.version,
    'acl_version', d.acl_version,
    'status', d.status,
    'acl', vecsync.payload_acl(d.tenant_id, d.document_id),
    'content_hash', vecsync.content_hash(d.title, d.body),
    'deleted', false,
    'updated_at', d.updated_at);

CREATE TABLE IF NOT EXISTS vecsync.service_pauses (
  sink_name text NOT NULL,
  service text NOT NULL,
  dependency text NOT NULL,
  reason text NOT NULL,
  detail text,
  since timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink_name, service, dependency)
);

-- Down Migration

DROP TABLE IF EXISTS vecsync.service_pauses;

CREATE OR REPLACE FUNCTION vecsync.document_payload(d vecsync.documents, p_model_name text, p_model_version integer)
  RETURNS jsonb LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'op', 'upsert',
    'tenant_id', d.tenant_id,
    'document_id', d.document_id,
    'version', d.version,
    'acl_version', d.acl_version,
    'acl', vecsync.current_acl(d.tenant_id, d.document_id),
    'title', d.title,
    'body', d.body,
    'language', d.language,
    'status', d.status,
    'metadata', vecsync.allowed_metadata(d.metadata),
    'content_hash', vecsync.content_hash(d.title, d.body),
    'model', jsonb_build_object('name', p_model_name, 'version', p_model_version),
    'created_at', now());

CREATE OR REPLACE FUNCTION vecsync.acl_payload(d vecsync.documents) RETURNS jsonb
  LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'op', 'acl',
    'tenant_id', d.tenant_id,
    'document_id', d.document_id,
    'version', d.version,
    'acl_version', d.acl_version,
    'acl', vecsync.current_acl(d.tenant_id, d.document_id),
    'created_at', now());

CREATE OR REPLACE FUNCTION vecsync.state_payload(d vecsync.documents) RETURNS jsonb
  LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'tenant_id', d.tenant_id,
    'document_id', d.document_id,
    'version', d.version,
    'acl_version', d.acl_version,
    'status', d.status,
    'acl', vecsync.current_acl(d.tenant_id, d.document_id),
    'content_hash', vecsync.content_hash(d.title, d.body),
    'deleted', false,
    'updated_at', d.updated_at);

DROP FUNCTION IF EXISTS vecsync.acl_overflows(text, text);
DROP FUNCTION IF EXISTS vecsync.payload_acl(text, text);
DROP FUNCTION IF EXISTS vecsync.payload_acl_limit();
DROP FUNCTION IF EXISTS vecsync.payload_inline_limit();
