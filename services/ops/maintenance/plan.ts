/**
 * What pgvector maintenance to queue for one chunk table, from a sample of its statistics. Pure:
 * the loop in `index.ts` samples, calls this, and queues what it returns.
 */

export const MAINTENANCE_KINDS = ['analyze', 'reindex'] as const;
export type MaintenanceKind = (typeof MAINTENANCE_KINDS)[number];

/** The chunk table as `pg_stat_user_tables` shows it now. */
export interface TableSample {
  tableOid: number;
  liveRows: number;
  /** n_tup_ins + n_tup_upd + n_tup_del: only grows until the statistics are reset. */
  changesTotal: number;
  modifiedSinceAnalyze: number;
  lastAnalyzeAt: Date | null;
}

/** What the source remembers of the table (vecsync.sink_index_stats), if anything. */
export interface StoredBaseline {
  tableOid: number;
  changesAtBuild: number;
  lastIndexBuildAt: Date | null;
}

export interface Baseline {
  changesAtBuild: number;
  lastIndexBuildAt: Date | null;
}

/**
 * The baseline to keep: a re-created table (new oid) has a freshly built index, and counters that
 * went backwards were reset (pg_stat_reset, crash recovery), so both count again from zero.
 */
export function nextBaseline(sample: TableSample, stored: StoredBaseline | undefined): Baseline {
  if (!stored || stored.tableOid !== sample.tableOid) return { changesAtBuild: 0, lastIndexBuildAt: null };
  if (sample.changesTotal < stored.changesAtBuild)
    return { changesAtBuild: 0, lastIndexBuildAt: stored.lastIndexBuildAt };
  return { changesAtBuild: stored.changesAtBuild, lastIndexBuildAt: stored.lastIndexBuildAt };
}

export function rowsChangedSinceBuild(sample: TableSample, baseline: Baseline): number {
  return Math.max(0, sample.changesTotal - baseline.changesAtBuild);
}

export interface Thresholds {
  /** VECSYNC_REINDEX_DRIFT_THRESHOLD */
  reindexRows: number;
  /** VECSYNC_ANALYZE_THRESHOLD */
  analyzeRows: number;
}

export interface PlannedJob {
  kind: MaintenanceKind;
  reason: string;
}

/** Jobs to queue; a kind already queued or running is not queued twice. */
export function planMaintenance(
  sample: TableSample,
  baseline: Baseline,
  pending: ReadonlySet<MaintenanceKind>,
  thresholds: Thresholds,
): PlannedJob[] {
  const jobs: PlannedJob[] = [];
  const changed = rowsChangedSinceBuild(sample, baseline);
  if (!pending.has('reindex') && changed >= thresholds.reindexRows) {
    jobs.push({
      kind: 'reindex',
      reason: `${changed} rows changed since the last index build (threshold ${thresholds.reindexRows})`,
    });
  }
  // A reindex does not refresh the planner's statistics, so an ANALYZE may be queued beside it.
  if (!pending.has('analyze') && sample.modifiedSinceAnalyze >= thresholds.analyzeRows) {
    jobs.push({
      kind: 'analyze',
      reason: `${sample.modifiedSinceAnalyze} rows modified since the last ANALYZE (threshold ${thresholds.analyzeRows})`,
    });
  }
  return jobs;
}
