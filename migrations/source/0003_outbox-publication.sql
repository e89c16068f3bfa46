-- The publication Debezium's pgoutput slot reads (connector: publication.autocreate.mode=disabled).
-- It is created here rather than by the connector so that the captured tables are versioned with
-- the schema and the connector's database user needs neither table ownership nor CREATE rights.
--
-- publish = 'insert, update': the outbox tables are insert-only as far as capture is concerned.
-- Pruning (DELETE) and TRUNCATE never leave PostgreSQL. UPDATEs stay published because the
-- heartbeat.action.query is an upsert of vecsync.heartbeat, and an idle database only lets the
-- slot advance when the connector receives a change; status write-back UPDATEs of the outbox are
-- dropped by the connector (skipped.operations=u,d,t).

-- Up Migration

CREATE PUBLICATION vecsync_outbox
  FOR TABLE vecsync.vector_sync_outbox, vecsync.state_outbox, vecsync.heartbeat
  WITH (publish = 'insert, update');

-- Down Migration

-- A slot cannot decode past changes made while its publication did not exist: dropping the
-- publication under a live slot and creating it again (down, then up) leaves the connector failing
-- with 'publication "vecsync_outbox" does not exist' until the slot is dropped. So refuse while a
-- logical slot reads this database; delete the connector and drop its slot first.
DO $$
DECLARE
  v_slots text;
BEGIN
  SELECT string_agg(slot_name, ', ') INTO v_slots
    FROM pg_replication_slots WHERE database = current_database() AND slot_type = 'logical';
  IF v_slots IS NOT NULL THEN
    RAISE EXCEPTION 'replication slot(s) % still read this database: delete the connector and drop the slot(s) before reverting the outbox publication', v_slots
      USING ERRCODE = 'object_in_use';
  END IF;
END
$$;
DROP PUBLICATION IF EXISTS vecsync_outbox;
