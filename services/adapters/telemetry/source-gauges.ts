/**
 * Source-side gauges, read from PostgreSQL at scrape time: the outbox backlog per lane and
 * operation (what is queued, what failed, how old the oldest queued event is) and the logical
 * replication slots (retained WAL, whether a slot was invalidated).
 *
 * They are measured where the truth is, not inside a consumer: when the writer stops, its own
 * consumer-lag gauge disappears with its /metrics endpoint, but the outbox rows it should have
 * marked `processed` stay `queued` and keep ageing here. A process that stays up (the reconciler)
 * registers them once with `registerSourceGauges(pool)`.
 */
import type pg from 'pg';
import client from 'prom-client';
import { registry as defaultRegistry } from './metrics.ts';

const LANES = ['priority', 'live', 'bulk'] as const;
const OPERATIONS = ['upsert', 'delete', 'acl'] as const;

export interface SourceGaugeOptions {
  /** Registry to add the gauges to (the services' registry by default). */
  registry?: client.Registry;
  /**
   * Count only outbox rows of tenants whose id starts with this prefix. For tests that share one
   * outbox with others; a deployment measures the whole outbox (undefined).
   */
  tenantPrefix?: string;
  /** Scrapes closer together than this reuse the previous reading (one round of queries per scrape). */
  minIntervalMs?: number;
}

export interface SourceGauges {
  /** Reads the source now (what a scrape does); resolves once every gauge holds the new values. */
  refresh(): Promise<void>;
  /** Removes the gauges from the registry. */
  unregister(): void;
}

interface Reading {
  outbox: { lane: string; operation: string; queued: number; failed: number; age: number }[];
  slots: { slot: string; active: boolean; walStatus: string; retained: number }[];
}

/** Names of the gauges this module registers (for the dashboard and rules tests). */
export const SOURCE_GAUGE_NAMES = [
  'vecsync_outbox_queued',
  'vecsync_outbox_failed',
  'vecsync_outbox_oldest_queued_age_seconds',
  'vecsync_replication_slot_retained_wal_bytes',
  'vecsync_replication_slot_active',
  'vecsync_replication_slot_invalid',
  'vecsync_source_gauge_errors_total',
] as const;

/** A pg Pool in a deployment; anything with pg's query() (a client inside a transaction, in tests). */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.ClientBase, 'query'>;

export function registerSourceGauges(pool: Queryable, options: SourceGaugeOptions = {}): SourceGauges {
  const registers = [options.registry ?? defaultRegistry];
  const minIntervalMs = options.minIntervalMs ?? 500;
  let last: { at: number; reading: Promise<Reading | undefined> } | undefined;

  async function read(): Promise<Reading | undefined> {
    try {
      const outbox = await pool.query<{ lane: string; operation: string; queued: string; failed: string; age: number }>(
        `SELECT lane, operation,
                count(*) FILTER (WHERE status = 'queued') AS queued,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued')), 0)::float8 AS age
           FROM vecsync.vector_sync_outbox
          WHERE status IN ('queued', 'failed') AND ($1::text IS NULL OR starts_with(tenant_id, $1))
          GROUP BY lane, operation`,
        [options.tenantPrefix ?? null],
      );
      const slots = await pool.query<{
        slot_name: string;
        active: boolean;
        wal_status: string | null;
        retained: number;
      }>(
        `SELECT slot_name, active, wal_status,
                coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8 AS retained
           FROM pg_replication_slots`,
      );
      return {
        outbox: outbox.rows.map((r) => ({
          lane: r.lane,
          operation: r.operation,
          queued: Number(r.queued),
          failed: Number(r.failed),
          age: Math.max(0, r.age),
        })),
        slots: slots.rows.map((r) => ({
          slot: r.slot_name,
          active: r.active,
          walStatus: r.wal_status ?? 'unknown',
          retained: r.retained,
        })),
      };
    } catch {
      // The gauges go absent (a stale reading would look healthy); the counter says why.
      errors.inc();
      return undefined;
    }
  }

  function reading(): Promise<Reading | undefined> {
    const now = Date.now();
    if (!last || now - last.at >= minIntervalMs) last = { at: now, reading: read() };
    return last.reading;
  }

  /** Fills one gauge from the current reading (every gauge's collect() shares one reading). */
  function fill(gauge: client.Gauge<string>, write: (r: Reading, g: client.Gauge<string>) => void) {
    return async () => {
      const r = await reading();
      gauge.reset();
      if (r) write(r, gauge);
    };
  }

  /** Every lane and operation appears, at 0 when nothing is queued, so a drained backlog reads 0. */
  function perLane(r: Reading, g: client.Gauge<string>, value: (row: Reading['outbox'][number]) => number) {
    for (const lane of LANES) for (const operation of OPERATIONS) g.set({ lane, operation }, 0);
    for (const row of r.outbox) g.set({ lane: row.lane, operation: row.operation }, value(row));
  }

  const errors = new client.Counter({
    name: 'vecsync_source_gauge_errors_total',
    help: 'Source readings (outbox, replication slots) that failed; the source gauges are absent until one succeeds.',
    registers,
  });
  const gauges: client.Gauge<string>[] = [];
  function gauge(
    name: string,
    help: string,
    labelNames: string[],
    write: (r: Reading, g: client.Gauge<string>) => void,
  ) {
    const g: client.Gauge<string> = new client.Gauge({
      name,
      help,
      labelNames,
      registers,
      collect: () => fill(g, write)(),
    });
    gauges.push(g);
  }

  gauge(
    'vecsync_outbox_queued',
    'Outbox rows with status queued, per lane and operation.',
    ['lane', 'operation'],
    (r, g) => perLane(r, g, (row) => row.queued),
  );
  gauge(
    'vecsync_outbox_failed',
    'Outbox rows with status failed (dead-lettered), per lane and operation.',
    ['lane', 'operation'],
    (r, g) => perLane(r, g, (row) => row.failed),
  );
  gauge(
    'vecsync_outbox_oldest_queued_age_seconds',
    'Age of the oldest queued outbox row (now - created_at), per lane and operation; 0 when none is queued.',
    ['lane', 'operation'],
    (r, g) => perLane(r, g, (row) => row.age),
  );
  gauge(
    'vecsync_replication_slot_retained_wal_bytes',
    'WAL a logical replication slot keeps (current LSN - restart_lsn).',
    ['slot'],
    (r, g) => {
      for (const s of r.slots) g.set({ slot: s.slot }, s.retained);
    },
  );
  gauge(
    'vecsync_replication_slot_active',
    '1 while a consumer (Debezium) is attached to the slot.',
    ['slot'],
    (r, g) => {
      for (const s of r.slots) g.set({ slot: s.slot }, s.active ? 1 : 0);
    },
  );
  gauge(
    'vecsync_replication_slot_invalid',
    '1 when the slot lost WAL it needed (wal_status lost): change capture must be re-snapshotted.',
    ['slot', 'wal_status'],
    (r, g) => {
      for (const s of r.slots) g.set({ slot: s.slot, wal_status: s.walStatus }, s.walStatus === 'lost' ? 1 : 0);
    },
  );

  return {
    async refresh() {
      last = undefined;
      await reading();
    },
    unregister() {
      for (const reg of registers) for (const name of SOURCE_GAUGE_NAMES) reg.removeSingleMetric(name);
    },
  };
}
