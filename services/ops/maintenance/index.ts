/**
 * pgvector maintenance, off the write path. A loop (in `vecsync run reconciler` and `run all`, or
 * `tick()` from a test) that, per model table of one sink:
 *
 * 1. samples the chunk table's statistics in the sink database (pg_stat_user_tables) into the
 *    source's `vecsync.sink_index_stats`, which `vecsync.vector_status` and `vecsync status` read;
 * 2. queues jobs in `vecsync.maintenance_jobs` (pure decision: plan.ts): ANALYZE after bulk work
 *    (`VECSYNC_ANALYZE_THRESHOLD` rows modified since the last analyze), REINDEX INDEX CONCURRENTLY
 *    when the rows changed since the last index build reach `VECSYNC_REINDEX_DRIFT_THRESHOLD`;
 * 3. claims queued jobs (FOR UPDATE SKIP LOCKED, so several instances never run one twice) and runs
 *    each on its own sink connection (application_name `vecsync-maintenance`) as a single
 *    autocommit statement. REINDEX CONCURRENTLY cannot run inside a transaction block at all, and
 *    neither statement ever shares a writer's transaction: writes and searches go on meanwhile.
 *
 * After a reindex the counter baseline moves to the value sampled just before it started, so
 * "rows changed since the index build" resets (changes made while the index was rebuilt count as
 * changed: conservative).
 */
import pg from 'pg';
import { describeError } from '../../domain/errors.ts';
import { guardPool } from '../../adapters/postgres/pool.ts';
import { ModelRegistry } from '../../adapters/postgres/models.ts';
import type { Logger } from '../../adapters/telemetry/log.ts';
import { chunkTableNames, qualify, SINK_SCHEMA } from '../../adapters/sinks/pgvector/naming.ts';
import {
  nextBaseline,
  planMaintenance,
  rowsChangedSinceBuild,
  type MaintenanceKind,
  type TableSample,
  type Thresholds,
} from './plan.ts';

export const MAINTENANCE_APPLICATION_NAME = 'vecsync-maintenance';

export interface MaintenanceOptions {
  source: pg.Pool;
  sinkUrl: string;
  sinkName: string;
  thresholds: Thresholds;
  log: Logger;
  /** Model keys to maintain; default: every model of the registry that is not retired. */
  models?: () => Promise<string[]>;
}

export interface MaintenanceJob {
  id: number;
  sink_name: string;
  model_key: string;
  kind: MaintenanceKind;
  state: 'queued' | 'running' | 'done' | 'failed';
  reason: string;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  backend_pid: number | null;
  application_name: string | null;
  error: string | null;
}

export interface IndexSample extends TableSample {
  modelKey: string;
  rowsChangedSinceBuild: number;
}

export interface TickResult {
  samples: IndexSample[];
  queued: MaintenanceJob[];
  ran: MaintenanceJob[];
}

const SAMPLE_SQL = `SELECT c.oid::bigint AS table_oid, s.n_live_tup AS live_rows,
       (s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::bigint AS changes_total,
       s.n_mod_since_analyze AS modified_since_analyze,
       greatest(s.last_analyze, s.last_autoanalyze) AS last_analyze_at
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'`;

export class MaintenanceWorker {
  readonly #o: MaintenanceOptions;
  readonly #sink: pg.Pool;
  readonly #registry: ModelRegistry;

  constructor(options: MaintenanceOptions) {
    this.#o = options;
    this.#registry = new ModelRegistry(options.source);
    this.#sink = guardPool(
      new pg.Pool({
        connectionString: options.sinkUrl,
        // One statement at a time: maintenance is never in a hurry.
        max: 1,
        application_name: MAINTENANCE_APPLICATION_NAME,
        // A reindex of a large table takes as long as it takes.
        statement_timeout: 0,
      }),
      (error) => options.log.warn({ err: error.message }, 'maintenance: sink connection lost'),
    );
  }

  async #models(): Promise<string[]> {
    if (this.#o.models) return this.#o.models();
    return (await this.#registry.live()).map((m) => m.modelKey);
  }

  /** Samples every model table of the sink into vecsync.sink_index_stats. */
  async sample(): Promise<IndexSample[]> {
    const out: IndexSample[] = [];
    for (const modelKey of await this.#models()) {
      const names = chunkTableNames(modelKey);
      const row = (
        await this.#sink.query<{
          table_oid: string;
          live_rows: string;
          changes_total: string;
          modified_since_analyze: string;
          last_analyze_at: Date | null;
        }>(SAMPLE_SQL, [SINK_SCHEMA, names.table])
      ).rows[0];
      if (!row) continue; // nothing written for this model yet
      const sample: TableSample = {
        tableOid: Number(row.table_oid),
        liveRows: Number(row.live_rows),
        changesTotal: Number(row.changes_total),
        modifiedSinceAnalyze: Number(row.modified_since_analyze),
        lastAnalyzeAt: row.last_analyze_at,
      };
      const stored = (
        await this.#o.source.query<{ table_oid: string; changes_at_build: string; last_index_build_at: Date | null }>(
          `SELECT table_oid, changes_at_build, last_index_build_at FROM vecsync.sink_index_stats
            WHERE sink_name = $1 AND model_key = $2`,
          [this.#o.sinkName, modelKey],
        )
      ).rows[0];
      const baseline = nextBaseline(
        sample,
        stored && {
          tableOid: Number(stored.table_oid),
          changesAtBuild: Number(stored.changes_at_build),
          lastIndexBuildAt: stored.last_index_build_at,
        },
      );
      await this.#o.source.query(
        `INSERT INTO vecsync.sink_index_stats AS s
           (sink_name, model_key, table_name, index_name, table_oid, live_rows, changes_total, changes_at_build,
            modified_since_analyze, last_analyze_at, last_index_build_at, sampled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
         ON CONFLICT (sink_name, model_key) DO UPDATE SET
           table_name = excluded.table_name, index_name = excluded.index_name, table_oid = excluded.table_oid,
           live_rows = excluded.live_rows, changes_total = excluded.changes_total,
           changes_at_build = excluded.changes_at_build, modified_since_analyze = excluded.modified_since_analyze,
           last_analyze_at = excluded.last_analyze_at, last_index_build_at = excluded.last_index_build_at,
           sampled_at = excluded.sampled_at`,
        [
          this.#o.sinkName,
          modelKey,
          names.table,
          names.hnswIndex,
          sample.tableOid,
          sample.liveRows,
          sample.changesTotal,
          baseline.changesAtBuild,
          sample.modifiedSinceAnalyze,
          sample.lastAnalyzeAt,
          baseline.lastIndexBuildAt,
        ],
      );
      out.push({ ...sample, modelKey, rowsChangedSinceBuild: rowsChangedSinceBuild(sample, baseline) });
    }
    return out;
  }

  /** Queues what the samples call for (at most one pending job per kind and model). */
  async queue(samples: IndexSample[]): Promise<MaintenanceJob[]> {
    const queued: MaintenanceJob[] = [];
    for (const sample of samples) {
      const pending = new Set(
        (
          await this.#o.source.query<{ kind: MaintenanceKind }>(
            `SELECT kind FROM vecsync.maintenance_jobs
              WHERE sink_name = $1 AND model_key = $2 AND state IN ('queued', 'running')`,
            [this.#o.sinkName, sample.modelKey],
          )
        ).rows.map((r) => r.kind),
      );
      const baseline = { changesAtBuild: sample.changesTotal - sample.rowsChangedSinceBuild, lastIndexBuildAt: null };
      for (const job of planMaintenance(sample, baseline, pending, this.#o.thresholds)) {
        const res = await this.#o.source.query<MaintenanceJob>(
          `INSERT INTO vecsync.maintenance_jobs (sink_name, model_key, kind, reason) VALUES ($1, $2, $3, $4)
           ON CONFLICT (sink_name, model_key, kind) WHERE state IN ('queued', 'running') DO NOTHING
           RETURNING *`,
          [this.#o.sinkName, sample.modelKey, job.kind, job.reason],
        );
        if (res.rows[0]) {
          queued.push(res.rows[0]);
          this.#o.log.info({ model: sample.modelKey, kind: job.kind, reason: job.reason }, 'maintenance queued');
        }
      }
    }
    return queued;
  }

  /**
   * Jobs left `running` by an instance that died: their sink backend is gone, so they are marked
   * failed (the next tick queues them again if still needed). A job another live instance runs
   * keeps its backend and is left alone.
   */
  async failAbandoned(): Promise<number> {
    const alive = (
      await this.#sink.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [
        MAINTENANCE_APPLICATION_NAME,
      ])
    ).rows.map((r) => r.pid);
    const res = await this.#o.source.query(
      `UPDATE vecsync.maintenance_jobs SET state = 'failed', finished_at = now(),
              error = 'abandoned: the maintenance backend that ran it is gone'
        WHERE sink_name = $1 AND state = 'running' AND (backend_pid IS NULL OR NOT backend_pid = ANY($2::integer[]))`,
      [this.#o.sinkName, alive],
    );
    return res.rowCount ?? 0;
  }

  /** Claims the oldest queued job of this sink and runs it; undefined when there is none. */
  async runNext(): Promise<MaintenanceJob | undefined> {
    const client = await this.#sink.connect();
    let claimed: MaintenanceJob | undefined;
    let error: string | null = null;
    try {
      const backend = (
        await client.query<{ pid: number; application_name: string }>(
          `SELECT pg_backend_pid() AS pid, current_setting('application_name') AS application_name`,
        )
      ).rows[0];
      claimed = (
        await this.#o.source.query<MaintenanceJob>(
          `UPDATE vecsync.maintenance_jobs SET state = 'running', started_at = now(), backend_pid = $2,
                  application_name = $3
            WHERE id = (SELECT id FROM vecsync.maintenance_jobs WHERE sink_name = $1 AND state = 'queued'
                         ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
            RETURNING *`,
          [this.#o.sinkName, backend?.pid ?? null, backend?.application_name ?? null],
        )
      ).rows[0];
      if (!claimed) return undefined;
      const names = chunkTableNames(claimed.model_key);
      try {
        if (claimed.kind === 'analyze') {
          await client.query(`ANALYZE ${names.qualified}`);
        } else {
          const before = (await client.query<{ changes_total: string }>(SAMPLE_SQL, [SINK_SCHEMA, names.table]))
            .rows[0];
          await client.query(`REINDEX INDEX CONCURRENTLY ${qualify(names.hnswIndex)}`);
          await this.#o.source.query(
            `UPDATE vecsync.sink_index_stats SET changes_at_build = $3, last_index_build_at = $4
              WHERE sink_name = $1 AND model_key = $2`,
            [this.#o.sinkName, claimed.model_key, Number(before?.changes_total ?? 0), claimed.started_at ?? new Date()],
          );
        }
      } catch (e) {
        error = describeError(e);
        if (claimed.kind === 'reindex') await dropInvalidCopies(client, names.table).catch(() => undefined);
      }
    } finally {
      client.release();
    }
    const done = (
      await this.#o.source.query<MaintenanceJob>(
        `UPDATE vecsync.maintenance_jobs SET state = $2, finished_at = now(), error = $3 WHERE id = $1 RETURNING *`,
        [claimed.id, error ? 'failed' : 'done', error],
      )
    ).rows[0] as MaintenanceJob;
    if (error)
      this.#o.log.error({ job: done.id, kind: done.kind, model: done.model_key, err: error }, 'maintenance failed');
    else this.#o.log.info({ job: done.id, kind: done.kind, model: done.model_key }, 'maintenance done');
    return done;
  }

  /** One round: sample, queue, run everything queued, sample again (so the stats show the result). */
  async tick(): Promise<TickResult> {
    await this.failAbandoned();
    const samples = await this.sample();
    const queued = await this.queue(samples);
    const ran: MaintenanceJob[] = [];
    for (;;) {
      const job = await this.runNext();
      if (!job) break;
      ran.push(job);
    }
    return { samples: ran.length > 0 ? await this.sample() : samples, queued, ran };
  }

  async close(): Promise<void> {
    await this.#sink.end();
  }
}

/** A failed REINDEX CONCURRENTLY leaves an invalid `<index>_ccnew` copy behind; drop it. */
async function dropInvalidCopies(client: pg.PoolClient, table: string): Promise<void> {
  const invalid = await client.query<{ name: string }>(
    `SELECT i.relname AS name FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1 AND t.relname = $2 AND NOT x.indisvalid AND i.relname LIKE '%\\_ccnew%'`,
    [SINK_SCHEMA, table],
  );
  for (const r of invalid.rows) await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualify(r.name)}`);
}

/** The loop: a tick every `intervalMs`, one at a time; a failed tick is logged and the next runs on time. */
export function startMaintenanceLoop(
  worker: MaintenanceWorker,
  intervalMs: number,
  log: Logger,
): { stop(): Promise<void> } {
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  const schedule = (delay: number) => {
    if (stopping) return;
    timer = setTimeout(() => {
      current = worker
        .tick()
        .catch((error: unknown) =>
          log.warn({ err: describeError(error) }, 'maintenance tick failed; next one on schedule'),
        )
        .finally(() => schedule(intervalMs));
    }, delay);
  };
  schedule(Math.min(intervalMs, 5_000));
  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await current.catch(() => undefined);
      await worker.close();
    },
  };
}
