-- Versioning and outbox triggers. They run in the writer's own transaction, so a committed
-- change always has its outbox rows, and a rolled-back one never does.
--
-- Payload construction is in SQL functions (vecsync.document_payload, vecsync.enqueue_upsert, ...)
-- so that a backfill can enqueue bulk-lane rows with exactly the same shapes:
--   SELECT vecsync.enqueue_upsert(d, 'bulk', 'hashing-384', 1) FROM vecsync.documents d WHERE ...;
-- Payloads never read documents.restricted, and metadata only through vecsync.allowed_metadata.
-- Every payload carries all of its fields (null when unset). The connector publishes the payload
-- text as it is (StringConverter, no JSON expansion), so the Kafka value is byte for byte the
-- jsonb text of the outbox row.

-- Up Migration

CREATE FUNCTION vecsync.event_key(p_tenant_id text, p_document_id text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN p_tenant_id || ':' || p_document_id;

CREATE FUNCTION vecsync.allowed_metadata(p_metadata jsonb) RETURNS jsonb
  LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
    FROM jsonb_each(CASE WHEN jsonb_typeof(p_metadata) = 'object' THEN p_metadata ELSE '{}'::jsonb END) AS e
   WHERE e.key IN (SELECT a.key FROM vecsync.metadata_allowlist a);
END;
COMMENT ON FUNCTION vecsync.allowed_metadata(jsonb) IS
  'The metadata keys listed in vecsync.metadata_allowlist; every other key stays in PostgreSQL.';

CREATE FUNCTION vecsync.current_acl(p_tenant_id text, p_document_id text) RETURNS jsonb
  LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT coalesce(jsonb_agg(a.principal ORDER BY a.principal), '[]'::jsonb)
    FROM vecsync.document_acl a
   WHERE a.tenant_id = p_tenant_id AND a.document_id = p_document_id;
END;

-- sha256 (hex) of title || LF || body, the text that is chunked and embedded. The upsert payload
-- and the state topic carry it, so the ledger and the reconciler compare the same value.
CREATE FUNCTION vecsync.content_hash(p_title text, p_body text) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  RETURN encode(sha256(convert_to(coalesce(p_title, '') || E'\n' || coalesce(p_body, ''), 'UTF8')), 'hex');

CREATE FUNCTION vecsync.document_payload(d vecsync.documents, p_model_name text, p_model_version integer)
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

CREATE FUNCTION vecsync.delete_payload(
    p_tenant_id text, p_document_id text, p_version bigint, p_acl_version bigint, p_reason text)
  RETURNS jsonb LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'op', 'delete',
    'tenant_id', p_tenant_id,
    'document_id', p_document_id,
    'version', p_version,
    'acl_version', p_acl_version,
    'reason', p_reason,
    'created_at', now());

CREATE FUNCTION vecsync.acl_payload(d vecsync.documents) RETURNS jsonb
  LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'op', 'acl',
    'tenant_id', d.tenant_id,
    'document_id', d.document_id,
    'version', d.version,
    'acl_version', d.acl_version,
    'acl', vecsync.current_acl(d.tenant_id, d.document_id),
    'created_at', now());

CREATE FUNCTION vecsync.state_payload(d vecsync.documents) RETURNS jsonb
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

-- State of a hard-deleted document: status 'deleted', deleted=true, no ACL, no content hash.
CREATE FUNCTION vecsync.deleted_state_payload(
    p_tenant_id text, p_document_id text, p_version bigint, p_acl_version bigint)
  RETURNS jsonb LANGUAGE sql STABLE
  RETURN jsonb_build_object(
    'tenant_id', p_tenant_id,
    'document_id', p_document_id,
    'version', p_version,
    'acl_version', p_acl_version,
    'status', 'deleted',
    'acl', '[]'::jsonb,
    'content_hash', NULL::text,
    'deleted', true,
    'updated_at', now());

-- Enqueue helpers: one place that knows the outbox columns. A backfill calls enqueue_upsert
-- with lane 'bulk'.
CREATE FUNCTION vecsync.enqueue_upsert(
    d vecsync.documents, p_lane text, p_model_name text, p_model_version integer)
  RETURNS bigint LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO vecsync.vector_sync_outbox
    (event_key, tenant_id, document_id, operation, lane, embedding_model, embedding_version,
     document_version, acl_version, payload)
  VALUES
    (vecsync.event_key(d.tenant_id, d.document_id), d.tenant_id, d.document_id, 'upsert', p_lane,
     p_model_name, p_model_version, d.version, d.acl_version,
     vecsync.document_payload(d, p_model_name, p_model_version))
  RETURNING id;
END;

CREATE FUNCTION vecsync.enqueue_delete(
    p_tenant_id text, p_document_id text, p_version bigint, p_acl_version bigint, p_reason text)
  RETURNS bigint LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO vecsync.vector_sync_outbox
    (event_key, tenant_id, document_id, operation, lane, document_version, acl_version, payload)
  VALUES
    (vecsync.event_key(p_tenant_id, p_document_id), p_tenant_id, p_document_id, 'delete', 'priority',
     p_version, p_acl_version,
     vecsync.delete_payload(p_tenant_id, p_document_id, p_version, p_acl_version, p_reason))
  RETURNING id;
END;

CREATE FUNCTION vecsync.enqueue_acl(d vecsync.documents) RETURNS bigint
  LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO vecsync.vector_sync_outbox
    (event_key, tenant_id, document_id, operation, lane, document_version, acl_version, payload)
  VALUES
    (vecsync.event_key(d.tenant_id, d.document_id), d.tenant_id, d.document_id, 'acl', 'priority',
     d.version, d.acl_version, vecsync.acl_payload(d))
  RETURNING id;
END;

CREATE FUNCTION vecsync.append_state(d vecsync.documents) RETURNS bigint
  LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO vecsync.state_outbox (event_key, payload)
  VALUES (vecsync.event_key(d.tenant_id, d.document_id), vecsync.state_payload(d))
  RETURNING id;
END;

CREATE FUNCTION vecsync.append_deleted_state(
    p_tenant_id text, p_document_id text, p_version bigint, p_acl_version bigint)
  RETURNS bigint LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO vecsync.state_outbox (event_key, payload)
  VALUES (vecsync.event_key(p_tenant_id, p_document_id),
          vecsync.deleted_state_payload(p_tenant_id, p_document_id, p_version, p_acl_version))
  RETURNING id;
END;

-- documents: versions ------------------------------------------------------------------------

-- A new document continues above the tombstone of an earlier hard delete of the same id, so the
-- tombstone a sink keeps can never hide it.
CREATE FUNCTION vecsync.documents_before_insert() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  v_version bigint;
  v_acl_version bigint;
BEGIN
  SELECT t.version, t.acl_version INTO v_version, v_acl_version
    FROM vecsync.document_tombstones t
   WHERE t.tenant_id = NEW.tenant_id AND t.document_id = NEW.document_id;
  NEW.version := coalesce(v_version, 0) + 1;
  NEW.acl_version := coalesce(v_acl_version, 0) + 1;
  NEW.metadata := coalesce(NEW.metadata, '{}'::jsonb);
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

-- version rises when anything that reaches the vector store changed; a change of `restricted`
-- alone changes nothing. acl_version is only moved by vecsync.apply_acl_change.
CREATE FUNCTION vecsync.documents_before_update() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.document_id IS DISTINCT FROM OLD.document_id THEN
    RAISE EXCEPTION 'vecsync.documents: tenant_id and document_id cannot change; delete the document and insert it under the new id'
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.metadata := coalesce(NEW.metadata, '{}'::jsonb);
  NEW.version := OLD.version;
  IF current_setting('vecsync.acl_bump', true) IS DISTINCT FROM 'on' THEN
    NEW.acl_version := OLD.acl_version;
  END IF;
  IF (NEW.title, NEW.body, NEW.language, NEW.status, NEW.metadata)
     IS DISTINCT FROM (OLD.title, OLD.body, OLD.language, OLD.status, OLD.metadata) THEN
    NEW.version := OLD.version + 1;
  END IF;
  IF NEW.version <> OLD.version OR NEW.acl_version <> OLD.acl_version THEN
    NEW.updated_at := now();
  ELSE
    NEW.updated_at := OLD.updated_at;
  END IF;
  RETURN NEW;
END
$$;

-- documents: outbox ---------------------------------------------------------------------------

-- A new version: searchable documents go to every non-retired model on the live lane; archived
-- and soft-deleted ones leave the sink through the priority lane.
CREATE FUNCTION vecsync.documents_emit_change() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  m record;
BEGIN
  IF NEW.status = 'active' THEN
    FOR m IN
      SELECT em.name, em.version FROM vecsync.embedding_models em
       WHERE em.state <> 'retired' ORDER BY em.name, em.version
    LOOP
      PERFORM vecsync.enqueue_upsert(NEW, 'live', m.name, m.version);
    END LOOP;
  ELSE
    PERFORM vecsync.enqueue_delete(NEW.tenant_id, NEW.document_id, NEW.version, NEW.acl_version, NEW.status);
  END IF;
  PERFORM vecsync.append_state(NEW);
  RETURN NULL;
END
$$;

-- A hard DELETE is a change too: its version is one above the last one, kept as a tombstone.
-- The document's ACL rows go with it (the ACL trigger then finds no document and emits nothing).
CREATE FUNCTION vecsync.documents_emit_delete() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  v_version bigint := OLD.version + 1;
  v_acl_version bigint := OLD.acl_version + 1;
BEGIN
  INSERT INTO vecsync.document_tombstones AS t (tenant_id, document_id, version, acl_version, deleted_at)
  VALUES (OLD.tenant_id, OLD.document_id, v_version, v_acl_version, now())
  ON CONFLICT (tenant_id, document_id) DO UPDATE
    SET version = greatest(t.version, EXCLUDED.version),
        acl_version = greatest(t.acl_version, EXCLUDED.acl_version),
        deleted_at = EXCLUDED.deleted_at;
  DELETE FROM vecsync.document_acl a WHERE a.tenant_id = OLD.tenant_id AND a.document_id = OLD.document_id;
  PERFORM vecsync.enqueue_delete(OLD.tenant_id, OLD.document_id, v_version, v_acl_version, 'hard_delete');
  PERFORM vecsync.append_deleted_state(OLD.tenant_id, OLD.document_id, v_version, v_acl_version);
  RETURN NULL;
END
$$;

-- document_acl: one acl_version bump and one event per document and statement ----------------

-- p_keys: a JSON array of [tenant_id, document_id] pairs whose ACL changed.
CREATE FUNCTION vecsync.apply_acl_change(p_keys jsonb) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  d vecsync.documents;
BEGIN
  -- Lock in key order, so two concurrent ACL statements over the same documents cannot deadlock.
  PERFORM 1 FROM vecsync.documents x
   WHERE (x.tenant_id, x.document_id) IN (SELECT k ->> 0, k ->> 1 FROM jsonb_array_elements(p_keys) AS k)
   ORDER BY x.tenant_id, x.document_id
     FOR UPDATE;
  PERFORM set_config('vecsync.acl_bump', 'on', true);
  FOR d IN
    UPDATE vecsync.documents x SET acl_version = x.acl_version + 1
     WHERE (x.tenant_id, x.document_id) IN (SELECT k ->> 0, k ->> 1 FROM jsonb_array_elements(p_keys) AS k)
    RETURNING x.*
  LOOP
    -- An archived or deleted document has no chunks to re-permission; its next activation is a
    -- content upsert that carries the ACL. Its state still records the new ACL.
    IF d.status = 'active' THEN
      PERFORM vecsync.enqueue_acl(d);
    END IF;
    PERFORM vecsync.append_state(d);
  END LOOP;
  PERFORM set_config('vecsync.acl_bump', '', true);
END
$$;

CREATE FUNCTION vecsync.document_acl_emit_change() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  v_keys jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT jsonb_agg(DISTINCT jsonb_build_array(n.tenant_id, n.document_id)) INTO v_keys FROM acl_new n;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT jsonb_agg(DISTINCT jsonb_build_array(o.tenant_id, o.document_id)) INTO v_keys FROM acl_old o;
  ELSE
    SELECT jsonb_agg(DISTINCT jsonb_build_array(c.tenant_id, c.document_id)) INTO v_keys
      FROM (SELECT n.tenant_id, n.document_id FROM acl_new n
            UNION SELECT o.tenant_id, o.document_id FROM acl_old o) AS c;
  END IF;
  IF v_keys IS NOT NULL THEN
    PERFORM vecsync.apply_acl_change(v_keys);
  END IF;
  RETURN NULL;
END
$$;

-- TRUNCATE fires no row triggers, so it would bypass the outbox.
CREATE FUNCTION vecsync.forbid_truncate() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'TRUNCATE of %.% bypasses the vecsync outbox; DELETE the rows instead', TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'feature_not_supported';
END
$$;

CREATE TRIGGER documents_before_insert BEFORE INSERT ON vecsync.documents
  FOR EACH ROW EXECUTE FUNCTION vecsync.documents_before_insert();
CREATE TRIGGER documents_before_update BEFORE UPDATE ON vecsync.documents
  FOR EACH ROW EXECUTE FUNCTION vecsync.documents_before_update();
CREATE TRIGGER documents_emit_insert AFTER INSERT ON vecsync.documents
  FOR EACH ROW EXECUTE FUNCTION vecsync.documents_emit_change();
CREATE TRIGGER documents_emit_update AFTER UPDATE ON vecsync.documents
  FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version) EXECUTE FUNCTION vecsync.documents_emit_change();
CREATE TRIGGER documents_emit_delete AFTER DELETE ON vecsync.documents
  FOR EACH ROW EXECUTE FUNCTION vecsync.documents_emit_delete();
CREATE TRIGGER documents_forbid_truncate BEFORE TRUNCATE ON vecsync.documents
  FOR EACH STATEMENT EXECUTE FUNCTION vecsync.forbid_truncate();

CREATE TRIGGER document_acl_emit_insert AFTER INSERT ON vecsync.document_acl
  REFERENCING NEW TABLE AS acl_new
  FOR EACH STATEMENT EXECUTE FUNCTION vecsync.document_acl_emit_change();
CREATE TRIGGER document_acl_emit_update AFTER UPDATE ON vecsync.document_acl
  REFERENCING OLD TABLE AS acl_old NEW TABLE AS acl_new
  FOR EACH STATEMENT EXECUTE FUNCTION vecsync.document_acl_emit_change();
CREATE TRIGGER document_acl_emit_delete AFTER DELETE ON vecsync.document_acl
  REFERENCING OLD TABLE AS acl_old
  FOR EACH STATEMENT EXECUTE FUNCTION vecsync.document_acl_emit_change();
CREATE TRIGGER document_acl_forbid_truncate BEFORE TRUNCATE ON vecsync.document_acl
  FOR EACH STATEMENT EXECUTE FUNCTION vecsync.forbid_truncate();

-- Down Migration

DROP TRIGGER IF EXISTS document_acl_forbid_truncate ON vecsync.document_acl;
DROP TRIGGER IF EXISTS document_acl_emit_delete ON vecsync.document_acl;
DROP TRIGGER IF EXISTS document_acl_emit_update ON vecsync.document_acl;
DROP TRIGGER IF EXISTS document_acl_emit_insert ON vecsync.document_acl;
DROP TRIGGER IF EXISTS documents_forbid_truncate ON vecsync.documents;
DROP TRIGGER IF EXISTS documents_emit_delete ON vecsync.documents;
DROP TRIGGER IF EXISTS documents_emit_update ON vecsync.documents;
DROP TRIGGER IF EXISTS documents_emit_insert ON vecsync.documents;
DROP TRIGGER IF EXISTS documents_before_update ON vecsync.documents;
DROP TRIGGER IF EXISTS documents_before_insert ON vecsync.documents;

DROP FUNCTION IF EXISTS vecsync.forbid_truncate();
DROP FUNCTION IF EXISTS vecsync.document_acl_emit_change();
DROP FUNCTION IF EXISTS vecsync.apply_acl_change(jsonb);
DROP FUNCTION IF EXISTS vecsync.documents_emit_delete();
DROP FUNCTION IF EXISTS vecsync.documents_emit_change();
DROP FUNCTION IF EXISTS vecsync.documents_before_update();
DROP FUNCTION IF EXISTS vecsync.documents_before_insert();
DROP FUNCTION IF EXISTS vecsync.append_deleted_state(text, text, bigint, bigint);
DROP FUNCTION IF EXISTS vecsync.append_state(vecsync.documents);
DROP FUNCTION IF EXISTS vecsync.enqueue_acl(vecsync.documents);
DROP FUNCTION IF EXISTS vecsync.enqueue_delete(text, text, bigint, bigint, text);
DROP FUNCTION IF EXISTS vecsync.enqueue_upsert(vecsync.documents, text, text, integer);
DROP FUNCTION IF EXISTS vecsync.deleted_state_payload(text, text, bigint, bigint);
DROP FUNCTION IF EXISTS vecsync.state_payload(vecsync.documents);
DROP FUNCTION IF EXISTS vecsync.acl_payload(vecsync.documents);
DROP FUNCTION IF EXISTS vecsync.delete_payload(text, text, bigint, bigint, text);
DROP FUNCTION IF EXISTS vecsync.document_payload(vecsync.documents, text, integer);
DROP FUNCTION IF EXISTS vecsync.content_hash(text, text);
DROP FUNCTION IF EXISTS vecsync.current_acl(text, text);
DROP FUNCTION IF EXISTS vecsync.allowed_metadata(jsonb);
DROP FUNCTION IF EXISTS vecsync.event_key(text, text);
