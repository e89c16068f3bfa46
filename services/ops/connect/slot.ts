/**
 * The connector's replication slot as PostgreSQL sees it: is it in use, how far has it confirmed,
 * how much WAL does it hold back, is it still valid; and the one repair vecsync makes to it,
 * dropping it once PostgreSQL has invalidated it.
 */
import { createPool } from '../../adapters/postgres/pool.ts';
import type { SlotReport } from './apply.ts';

export async function readSlot(sourceUrl: string, name: string): Promise<SlotReport> {
  const pool = createPool(sourceUrl, { max: 1, applicationName: 'vecsync-status' });
  try {
    const { rows } = await pool.query<{
      active: boolean;
      active_pid: number | null;
      confirmed_flush_lsn: string | null;
      retained_wal_bytes: string | null;
      wal_status: string | null;
    }>(
      `SELECT active, active_pid, confirmed_flush_lsn::text,
              pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained_wal_bytes,
              wal_status
         FROM pg_replication_slots WHERE slot_name = $1`,
      [name],
    );
    const row = rows[0];
    if (!row) return { slot_name: name, exists: false };
    return {
      slot_name: name,
      exists: true,
      active: row.active,
      active_pid: row.active_pid,
      confirmed_flush_lsn: row.confirmed_flush_lsn,
      retained_wal_bytes: row.retained_wal_bytes === null ? null : Number(row.retained_wal_bytes),
      wal_status: row.wal_status,
    };
  } finally {
    await pool.end();
  }
}

/**
 * Drops the slot when PostgreSQL has invalidated it (`wal_status = 'lost'`) and nothing holds it;
 * returns whether it did. A lost slot can never stream again, and Debezium does not replace it: a
 * task started on it retries "Cannot obtain valid replication slot" for half an hour and then fails.
 * Once it is gone, Debezium creates a new slot and, its stored offset being no longer available,
 * re-snapshots the queued outbox rows (`snapshot.mode=when_needed`). Any other slot is left alone.
 */
export async function dropLostSlot(sourceUrl: string, name: string): Promise<boolean> {
  const pool = createPool(sourceUrl, { max: 1, applicationName: 'vecsync-connectors' });
  try {
    const { rowCount } = await pool.query(
      `SELECT pg_drop_replication_slot(slot_name)
         FROM pg_replication_slots WHERE slot_name = $1 AND wal_status = 'lost' AND NOT active`,
      [name],
    );
    return (rowCount ?? 0) > 0;
  } finally {
    await pool.end();
  }
}
