-- Per-document serialization of the version and outbox triggers, so that concurrent transactions
-- on one document produce versions that rise in commit order and lose no change.
--
-- Row locks already serialize UPDATE/UPDATE, UPDATE/DELETE and ACL changes of an existing document.
-- They cannot serialize against a document row that is not (or no longer) visible:
--
-- * Re-insert racing a hard delete: the INSERT read the tombstone before the deleting transaction
--   committed, so the new document started at version 1 under a tombstone of version 2 and the
--   sink's tombstone hid it forever. Now the INSERT first locks the visible row (waiting for the
--   deleter), and reads the tombstone in a later statement, which sees the committed delete.
-- * An ACL statement racing the document's INSERT: the ACL trigger found no document (the insert
--   was still open), bumped nothing and emitted nothing, while the insert's payload carried the ACL
--   as it was before the ACL statement, so a revoke was lost. Now both take a per-document
--   transaction advisory lock (class 7007, key hashtext(tenant:document)) when the row is not
--   there; the one that waits re-reads after the other committed.
--
-- Lock order per document is always "row lock, then advisory lock", and the advisory lock is only
-- taken by a path that holds no row lock of that document, so single-document statements cannot
-- deadlock each other. The re-reads rely on READ COMMITTED (the default), where each statement
-- of a trigger sees what committed before it. Under REPEATABLE READ or SERIALIZABLE a path that had
-- to wait for the lock raises serialization_failure (40001) instead, so the application retries
-- rather than commit a lost change.

-- Up Migration

-- Waits for the transaction-scoped lock of one document. Returns true when it had to wait, i.e.
-- another transaction held it (and has committed or rolled back since).
CREATE OR REPLACE FUNCTION vecsync.lock_document(p_tenant_id text, p_document_id text) RETURNS boolean
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_key integer := hashtext(vecsync.event_key(p_tenant_id, p_document_id));
BEGIN
  IF pg_try_advisory_xact_lock(7007, v_key) THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(7007, v_key);
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'could not serialize access to vecsync document %:% (a concurrent transaction changed it)',
        p_tenant_id, p_document_id
      USING ERRCODE = 'serialization_failure';
  END IF;
  RETURN true;
END
$$;
COMMENT ON FUNCTION vecsync.lock_document(text, text) IS
  'Per-document transaction advisory lock (7007, hashtext(tenant:document)) of the outbox triggers.';

-- A new document continues above the tombstone of an earlier hard delete of the same id, so the
-- tombstone a sink keeps can never hide it.
CREATE OR REPLACE FUNCTION vecsync.documents_before_insert() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  v_version bigint;
  v_acl_version bigint;
BEGIN
  -- A transaction deleting the document still holds its row: wait for it, so the tombstone read
  -- below (a later statement) sees its tombstone.
  PERFORM 1 FROM vecsync.documents x
   WHERE x.tenant_id = NEW.tenant_id AND x.document_id = NEW.document_id
     FOR UPDATE;
  IF NOT FOUND THEN
    -- No row: serialize with ACL statements and other inserts of this document.
    PERFORM vecsync.lock_document(NEW.tenant_id, NEW.document_id);
  END IF;
  -- With a live row the INSERT fails on the primary key, or becomes the UPDATE of an
  -- ON CONFLICT clause, whose own trigger sets the version from the row.
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

-- A hard DELETE is a change too: its version is one above the last one, kept as a tombstone.
-- The document's ACL rows go with it; the ACL trigger is told to ignore that statement (the
-- document is gone, there is nothing to bump or emit).
CREATE OR REPLACE FUNCTION vecsync.documents_emit_delete() RETURNS trigger
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
  PERFORM set_config('vecsync.hard_delete', 'on', true);
  DELETE FROM vecsync.document_acl a WHERE a.tenant_id = OLD.tenant_id AND a.document_id = OLD.document_id;
  PERFORM set_config('vecsync.hard_delete', '', true);
  PERFORM vecsync.enqueue_delete(OLD.tenant_id, OLD.document_id, v_version, v_acl_version, 'hard_delete');
  PERFORM vecsync.append_deleted_state(OLD.tenant_id, OLD.document_id, v_version, v_acl_version);
  RETURN NULL;
END
$$;

-- p_keys: a JSON array of [tenant_id, document_id] pairs whose ACL changed.
CREATE OR REPLACE FUNCTION vecsync.apply_acl_change(p_keys jsonb) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  d vecsync.documents;
  k record;
BEGIN
  -- 1. Row locks of the documents that exist, in key order (concurrent ACL statements over the
  --    same documents cannot deadlock).
  PERFORM 1 FROM vecsync.documents x
   WHERE (x.tenant_id, x.document_id) IN (SELECT e ->> 0, e ->> 1 FROM jsonb_array_elements(p_keys) AS e)
   ORDER BY x.tenant_id, x.document_id
     FOR UPDATE;
  -- 2. The documents without a visible row may be being inserted right now: wait for that insert
  --    (in key order), so that step 3 sees it and its ACL change is not lost.
  FOR k IN
    SELECT DISTINCT e ->> 0 AS tenant_id, e ->> 1 AS document_id
      FROM jsonb_array_elements(p_keys) AS e
     WHERE NOT EXISTS (SELECT 1 FROM vecsync.documents x
                        WHERE x.tenant_id = e ->> 0 AND x.document_id = e ->> 1)
     ORDER BY 1, 2
  LOOP
    PERFORM vecsync.lock_document(k.tenant_id, k.document_id);
  END LOOP;
  -- 3. Bump and emit (a new statement: it sees documents committed while step 2 waited).
  PERFORM set_config('vecsync.acl_bump', 'on', true);
  FOR d IN
    UPDATE vecsync.documents x SET acl_version = x.acl_version + 1
     WHERE (x.tenant_id, x.document_id) IN (SELECT e ->> 0, e ->> 1 FROM jsonb_array_elements(p_keys) AS e)
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

CREATE OR REPLACE FUNCTION vecsync.document_acl_emit_change() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  v_keys jsonb;
BEGIN
  -- The hard-DELETE trigger removing the ACL of the document it deletes.
  IF current_setting('vecsync.hard_delete', true) = 'on' THEN
    RETURN NULL;
  END IF;
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

-- Down Migration

CREATE OR REPLACE FUNCTION vecsync.document_acl_emit_change() RETURNS trigger
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

CREATE OR REPLACE FUNCTION vecsync.apply_acl_change(p_keys jsonb) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  d vecsync.documents;
BEGIN
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
    IF d.status = 'active' THEN
      PERFORM vecsync.enqueue_acl(d);
    END IF;
    PERFORM vecsync.append_state(d);
  END LOOP;
  PERFORM set_config('vecsync.acl_bump', '', true);
END
$$;

CREATE OR REPLACE FUNCTION vecsync.documents_emit_delete() RETURNS trigger
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

CREATE OR REPLACE FUNCTION vecsync.documents_before_insert() RETURNS trigger
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

DROP FUNCTION IF EXISTS vecsync.lock_document(text, text);
