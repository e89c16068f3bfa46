/**
 * The reconciler service (`vecsync run reconciler`, part of `run all`): a reconcile pass at start
 * and then every `VECSYNC_RECONCILE_INTERVAL_MS`, reporting only unless
 * `VECSYNC_RECONCILE_REPAIR=true`. Each completed pass sets the gauges
 * `vecsync_drift_documents{kind,tenant}` and `vecsync_reconcile_last_success_timestamp_seconds`;
 * a failed pass is logged and counted, and the next one runs on schedule.
 */
import { describeError } from '../../domain/errors.ts';
import { metrics } from '../../adapters/telemetry/metrics.ts';
import { registerGroupLagGauge, type GroupLagGauge } from '../../adapters/telemetry/group-lag.ts';
import { registerSourceGauges, type SourceGauges } from '../../adapters/telemetry/source-gauges.ts';
import { ModelRegistry } from '../../adapters/postgres/models.ts';
import type { Service } from '../runtime/service.ts';
import type { Runtime } from '../runtime/index.ts';
import type { IndexSpec, Sink } from '../../adapters/sinks/types.ts';
import { DRIFT_KINDS } from '../../domain/transforms/drift.ts';
import { reconcile, type ReconcileOptions, type ReconcileReport, type ReconcilerDeps } from './reconcile.ts';

export { reconcile, type ReconcileOptions, type ReconcileReport, type ReconcilerDeps } from './reconcile.ts';

/** The dependencies of a pass from a runtime: its source pool, Kafka client and state topic. */
export async function reconcilerDeps(
  rt: Runtime,
  sink: Sink,
  index: IndexSpec = rt.activeIndex,
): Promise<ReconcilerDeps> {
  const model = await new ModelRegistry(rt.source).get(index.modelKey);
  return {
    source: rt.source,
    sink,
    kafka: rt.kafka,
    stateTopic: rt.topics.state,
    sinkName: rt.config.sink.name,
    index,
    groupPrefix: `${rt.config.groupPrefix}.${rt.config.sink.name}`,
    log: rt.log.child({ service: 'reconciler' }),
    model: model ? { name: model.name, version: model.version } : null,
  };
}

/** Publishes a completed pass as metrics. */
export function recordPass(report: ReconcileReport): void {
  metrics.driftDocuments.reset();
  for (const [tenant, counts] of Object.entries(report.tenants)) {
    for (const kind of DRIFT_KINDS) metrics.driftDocuments.set({ kind, tenant }, counts[kind]);
  }
  metrics.reconcileLastSuccess.set(Date.now() / 1000);
  metrics.reconcileDuration.set(report.duration_ms / 1000);
  metrics.reconcileRuns.inc({ result: 'success' });
  if (report.repair) {
    const r = report.repair;
    const actions = {
      upsert: r.upserts,
      delete: r.deletes,
      acl: r.acls,
      state: r.states,
      ledger_reset: r.ledger_resets,
      skipped: r.skipped,
    };
    for (const [action, n] of Object.entries(actions)) if (n > 0) metrics.reconcileRepairs.inc({ action }, n);
  }
}

export interface ReconcilerServiceOptions {
  intervalMs?: number;
  /** Passed to every pass; defaults from the configuration. */
  pass?: Omit<ReconcileOptions, 'signal'>;
  /** Called after each completed pass (tests). */
  onPass?: (report: ReconcileReport) => void;
}

export async function createReconcilerService(
  rt: Runtime,
  options: ReconcilerServiceOptions = {},
): Promise<Service & { runOnce(): Promise<ReconcileReport> }> {
  const log = rt.log.child({ service: 'reconciler' });
  const sink = rt.sink;
  const intervalMs = options.intervalMs ?? rt.config.reconcile.intervalMs;
  const passOptions: Omit<ReconcileOptions, 'signal'> = {
    settleMs: rt.config.reconcile.settleMs,
    repair: rt.config.reconcile.repair,
    ...options.pass,
  };
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  let stopping = false;
  // The reconciler stays up while consumers come and go, so it exports what is measured from the
  // outside: the outbox backlog and slots (source) and every group's lag (broker).
  let sourceGauges: SourceGauges | undefined;
  let lagGauge: GroupLagGauge | undefined;
  const admin = rt.kafka.admin();

  async function runOnce(): Promise<ReconcileReport> {
    const deps = await reconcilerDeps(rt, sink);
    const report = await reconcile(deps, { ...passOptions, signal: abort.signal });
    recordPass(report);
    const t = report.state_topic;
    log.info(
      {
        drift: report.drift,
        state_topic: { missing: t.missing, extra: t.extra, stale: t.stale },
        pending: report.pending,
        repair: report.repair,
        stats: report.stats,
        duration_ms: report.duration_ms,
      },
      'reconcile pass finished',
    );
    options.onPass?.(report);
    return report;
  }

  function schedule(delayMs: number): void {
    if (stopping) return;
    timer = setTimeout(() => {
      const startedAt = Date.now();
      current = runOnce()
        .catch((error: unknown) => {
          if (stopping) return;
          metrics.reconcileRuns.inc({ result: 'failure' });
          log.error({ err: describeError(error) }, 'reconcile pass failed; the next one runs on schedule');
        })
        .finally(() => schedule(Math.max(0, intervalMs - (Date.now() - startedAt))));
    }, delayMs);
  }

  return {
    name: 'reconciler',
    runOnce,
    async start() {
      await sink.healthCheck();
      await admin.connect();
      sourceGauges = registerSourceGauges(rt.source);
      lagGauge = registerGroupLagGauge(admin, { groupPrefix: rt.config.groupPrefix });
      log.info(
        { interval_ms: intervalMs, repair: passOptions.repair, settle_ms: passOptions.settleMs },
        'reconciler scheduled',
      );
      schedule(0);
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      abort.abort(new Error('reconciler stopping'));
      await current.catch(() => undefined);
      sourceGauges?.unregister();
      lagGauge?.unregister();
      await admin.disconnect().catch(() => undefined);
    },
  };
}
