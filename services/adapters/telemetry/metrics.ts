/**
 * Every Prometheus metric vecsync exports, declared once (prom-client). Label names are the
 * project's vocabulary: service, lane, topic, partition, sink, model, reason.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import { assetPath } from '../../domain/assets.ts';

export const registry = new client.Registry();
// prom-client's default names already start with process_ / nodejs_.
client.collectDefaultMetrics({ register: registry, prefix: 'vecsync_' });
// These three are gauges named like counters (promtool refuses them); the same values are
// exported without the suffix (vecsync_nodejs_active_handles, ...).
for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
  registry.removeSingleMetric(`vecsync_nodejs_${name}`);
}

const common = { registers: [registry] };

/** Per (service, lane): a function giving the outbox created_at (ms) of its oldest unapplied event. */
const ageSources = new Map<{ service: string; lane: string }, () => number | undefined>();

export function registerAgeSource(
  labels: { service: string; lane: string },
  oldest: () => number | undefined,
): () => void {
  ageSources.set(labels, oldest);
  return () => ageSources.delete(labels);
}

export const metrics = {
  eventsProcessed: new client.Counter({
    name: 'vecsync_events_processed_total',
    help: 'Messages handled to completion (applied, or a no-op decided by the ledger).',
    labelNames: ['service', 'topic', 'outcome'] as const,
    ...common,
  }),
  eventsFailed: new client.Counter({
    name: 'vecsync_events_failed_total',
    help: 'Handler attempts that failed (retriable failures are retried; others are dead-lettered).',
    labelNames: ['service', 'topic', 'kind'] as const,
    ...common,
  }),
  deadLettered: new client.Counter({
    name: 'vecsync_dead_lettered_total',
    help: 'Messages sent to a dead-letter topic.',
    labelNames: ['service', 'reason'] as const,
    ...common,
  }),
  servicePaused: new client.Gauge({
    name: 'vecsync_service_paused',
    help: 'The service is paused (1) because a dependency refused its credentials (401/403); it retries with backoff and dead-letters nothing.',
    labelNames: ['service', 'reason'] as const,
    ...common,
  }),
  deadLetters: new client.Gauge({
    name: 'vecsync_dlq_messages',
    help: 'Messages in each dead-letter topic (refreshed every 30 s by running services).',
    labelNames: ['service'] as const,
    ...common,
  }),
  batchSize: new client.Histogram({
    name: 'vecsync_batch_size',
    help: 'Messages per handled batch.',
    labelNames: ['service', 'topic'] as const,
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
    ...common,
  }),
  batchDuration: new client.Histogram({
    name: 'vecsync_batch_duration_seconds',
    help: 'Time to handle one batch, sink acknowledgement included.',
    labelNames: ['service', 'topic'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ...common,
  }),
  consumerLag: new client.Gauge({
    name: 'vecsync_consumer_lag',
    help: 'Messages behind the partition high watermark, per consumer group and partition.',
    labelNames: ['group', 'topic', 'partition'] as const,
    ...common,
  }),
  oldestUnappliedAge: new client.Gauge({
    name: 'vecsync_oldest_unapplied_event_age_seconds',
    help: 'Age of the oldest event not yet applied, measured from the outbox created_at (0 when caught up).',
    labelNames: ['service', 'lane'] as const,
    ...common,
    // Ages grow with time, not with events, so they are computed at scrape time.
    collect() {
      this.reset();
      const now = Date.now();
      for (const [labels, oldest] of ageSources) {
        const at = oldest();
        this.set(labels, at === undefined ? 0 : Math.max(0, (now - at) / 1000));
      }
    },
  }),
  commitToApply: new client.Histogram({
    name: 'vecsync_commit_to_apply_seconds',
    help: 'Time from the outbox commit (created_at) to the sink acknowledging the change.',
    labelNames: ['service', 'lane'] as const,
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60],
    ...common,
  }),
  embeddings: new client.Counter({
    name: 'vecsync_embeddings_total',
    help: 'Chunk embeddings, computed by the provider or reused from the hash cache.',
    labelNames: ['model', 'result'] as const,
    ...common,
  }),
  retries: new client.Counter({
    name: 'vecsync_retries_total',
    help: 'Retried attempts after a retriable failure.',
    labelNames: ['service'] as const,
    ...common,
  }),
  driftDocuments: new client.Gauge({
    name: 'vecsync_drift_documents',
    help: 'Drift found by the last completed reconcile pass, per kind and tenant (orphan_chunks counts chunks).',
    labelNames: ['kind', 'tenant'] as const,
    ...common,
  }),
  reconcileLastSuccess: new client.Gauge({
    name: 'vecsync_reconcile_last_success_timestamp_seconds',
    help: 'When the last full reconcile pass completed (Unix time, seconds).',
    ...common,
  }),
  reconcileDuration: new client.Gauge({
    name: 'vecsync_reconcile_duration_seconds',
    help: 'Duration of the last completed reconcile pass.',
    ...common,
  }),
  reconcileRuns: new client.Counter({
    name: 'vecsync_reconcile_runs_total',
    help: 'Reconcile passes, by result (success, failure).',
    labelNames: ['result'] as const,
    ...common,
  }),
  // Operability (issue 14). Alert rules and the dashboard in deploy/monitoring use these names.
  buildInfo: new client.Gauge({
    name: 'vecsync_build_info',
    help: 'Always 1; the labels name the running version (a version change marks a deploy).',
    labelNames: ['version', 'service'] as const,
    ...common,
  }),
  backfillDocuments: new client.Counter({
    name: 'vecsync_backfill_documents_total',
    help: 'Documents enqueued by a backfill or re-embed.',
    labelNames: ['backfill', 'model'] as const,
    ...common,
  }),
  backfillPlannedRate: new client.Gauge({
    name: 'vecsync_backfill_planned_rate',
    help: 'Planned rate of a running backfill (documents per second); 0 once it is paused or done.',
    labelNames: ['backfill', 'model'] as const,
    ...common,
  }),
  backfillRemaining: new client.Gauge({
    name: 'vecsync_backfill_remaining_documents',
    help: 'Documents a backfill has still to enqueue.',
    labelNames: ['backfill', 'model'] as const,
    ...common,
  }),
  retrievalRecall: new client.Gauge({
    name: 'vecsync_retrieval_recall',
    help: 'Recall@k of the golden query set, per embedding model and tenant (last scoring).',
    labelNames: ['model', 'tenant', 'k'] as const,
    ...common,
  }),
  reconcileRepairs: new client.Counter({
    name: 'vecsync_reconcile_repairs_total',
    help: 'Repairs enqueued by the reconciler, by action (upsert, delete, acl, state, ledger_reset, skipped).',
    labelNames: ['action'] as const,
    ...common,
  }),
};

/** The version in vecsync's package.json, found by walking up from this file. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(assetPath('package.json'), 'utf8')) as { version: string }).version;
}

/** `vecsync run <service>` names the service; anything else is named by its command. */
function serviceFromArgv(argv = process.argv): string {
  const run = argv.indexOf('run');
  return run >= 0 && argv[run + 1] ? argv[run + 1]! : (argv[2] ?? 'vecsync');
}

/** Named health callbacks answered by `GET /healthz` (e.g. "the consumers of this process run"). */
const healthChecks = new Map<string, () => boolean>();

/** Registers a health callback; returns its unregistration. */
export function registerHealthCheck(name: string, healthy: () => boolean): () => void {
  healthChecks.set(name, healthy);
  return () => healthChecks.delete(name);
}

/** Healthy when at least one check is registered and every check passes; the failing ones otherwise. */
export function healthState(): { healthy: boolean; failing: string[] } {
  const failing: string[] = [];
  for (const [name, healthy] of healthChecks) {
    let ok = false;
    try {
      ok = healthy();
    } catch {
      ok = false;
    }
    if (!ok) failing.push(name);
  }
  return { healthy: healthChecks.size > 0 && failing.length === 0, failing };
}

/** Extra GET routes of the metrics server (the status page), by path without query string. */
export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;
const routes = new Map<string, RouteHandler>();

export function registerRoute(path: string, handler: RouteHandler): () => void {
  routes.set(path, handler);
  return () => routes.delete(path);
}

/** Serves /metrics, /healthz and the registered routes, on loopback by default, and sets `vecsync_build_info`. */
export async function startMetricsServer(
  host: string,
  port: number,
  service: string = serviceFromArgv(),
): Promise<{ port: number; close(): Promise<void> }> {
  metrics.buildInfo.set({ version: packageVersion(), service }, 1);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = req.method === 'GET' ? routes.get(path) : undefined;
    if (route) {
      Promise.resolve(route(req, res)).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
      return;
    }
    if (req.url === '/metrics') {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch((error: unknown) => {
          res.writeHead(500);
          res.end(String(error));
        });
      return;
    }
    if (path === '/healthz') {
      const state = healthState();
      res.writeHead(state.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(
        state.healthy ? 'ok\n' : `unhealthy: ${state.failing.join(', ') || 'no consumer registered in this process'}\n`,
      );
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
