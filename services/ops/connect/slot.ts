/** The connector's replication slot as PostgreSQL sees it: is it in use, how far has it confirmed, how much WAL does it hold back. */
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
    }>(
      `SELECT active, active_pid, confirmed_flush_lsn::text,
              pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained_wal_bytes
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
    };
  } finally {
    await pool.end();
  }
}
