/**
 * The Grafana dashboard and the alert rules query only metrics that vecsync exports: the names
 * come from the services' registry (services/adapters/telemetry/metrics.ts) and from the source-side and
 * group-lag gauges registered into a registry of their own, plus the rules' recording rules and
 * Prometheus' own series (up, ALERTS).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import client from 'prom-client';
import { registerGroupLagGauge } from '../../services/adapters/telemetry/group-lag.ts';
import { registry } from '../../services/adapters/telemetry/metrics.ts';
import { registerSourceGauges } from '../../services/adapters/telemetry/source-gauges.ts';
import { metricNames, templateQueries } from './promql.ts';
import { MONITORING, loadRules } from './support.ts';

const PROMETHEUS_SERIES = ['up', 'ALERTS', 'ALERTS_FOR_STATE'];

async function exportedNames(): Promise<Set<string>> {
  const extra = new client.Registry();
  registerSourceGauges({ query: async () => ({ rows: [] }) } as never, { registry: extra });
  registerGroupLagGauge(
    { listGroups: async () => ({ groups: [] }), fetchOffsets: async () => [], fetchTopicOffsets: async () => [] },
    { groupPrefix: 'x', registry: extra },
  );
  const names = new Set<string>();
  for (const m of [...(await registry.getMetricsAsJSON()), ...(await extra.getMetricsAsJSON())]) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

async function known(): Promise<Set<string>> {
  const names = await exportedNames();
  for (const g of loadRules().groups) for (const r of g.rules) if (r.record) names.add(r.record);
  for (const n of PROMETHEUS_SERIES) names.add(n);
  return names;
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

function dashboardQueries(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(path.join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as {
    panels: Panel[];
    annotations?: { list: { name: string; expr?: string }[] };
  };
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const a of dashboard.annotations?.list ?? [])
    if (a.expr) out.push({ where: `annotation "${a.name}"`, expr: a.expr });
  return out;
}

/** `where: name` for every referenced name that is not exported. */
function unknownNames(queries: { where: string; expr: string }[], names: Set<string>): string[] {
  const bad: string[] = [];
  for (const q of queries) {
    const used = metricNames(q.expr);
    if (used.length === 0) bad.push(`${q.where}: no metric in ${q.expr}`);
    for (const n of used) if (!names.has(n)) bad.push(`${q.where}: ${n}`);
  }
  return bad;
}

test('metricNames finds the metrics of a PromQL expression and nothing else', () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.95, sum by (le, lane) (rate(vecsync_commit_to_apply_seconds_bucket{lane=~"live|bulk"}[$__rate_interval])))',
    ),
    ['vecsync_commit_to_apply_seconds_bucket'],
  );
  assert.deepEqual(
    metricNames(
      'max by (group) (a_total) > on () group_left () vecsync:threshold:x and on (service) b offset 5m > 1e3',
    ),
    ['a_total', 'vecsync:threshold:x', 'b'],
  );
  assert.deepEqual(templateQueries('x {{ with query "sum(rate(f_total[5m]))" }}{{ . }}{{ end }}'), [
    'sum(rate(f_total[5m]))',
  ]);
});

test('every dashboard panel queries metrics the services export', async () => {
  const queries = dashboardQueries();
  assert.ok(queries.length >= 20, `only ${queries.length} queries`);
  assert.deepEqual(unknownNames(queries, await known()), []);
});

test('the dashboard covers lag and age per lane, throughput, DLQ, drift, slot WAL, embedder rate and backfill progress', () => {
  const used = new Set(dashboardQueries().flatMap((q) => metricNames(q.expr)));
  for (const name of [
    'vecsync_consumer_group_lag',
    'vecsync_outbox_oldest_queued_age_seconds',
    'vecsync_oldest_unapplied_event_age_seconds',
    'vecsync_events_processed_total',
    'vecsync_dlq_messages',
    'vecsync_drift_documents',
    'vecsync_replication_slot_retained_wal_bytes',
    'vecsync_embeddings_total',
    'vecsync_backfill_remaining_documents',
    'vecsync_backfill_planned_rate',
  ])
    assert.ok(used.has(name), `no panel shows ${name}`);
});

test('every alert rule (and its annotation queries) references only exported metrics', async () => {
  const queries: { where: string; expr: string }[] = [];
  for (const g of loadRules().groups)
    for (const r of g.rules) {
      if (r.alert) queries.push({ where: `alert ${r.alert}`, expr: r.expr });
      for (const text of Object.values(r.annotations ?? {}))
        for (const q of templateQueries(text)) queries.push({ where: `alert ${r.alert} annotation`, expr: q });
    }
  assert.deepEqual(unknownNames(queries, await known()), []);
});

test('a misspelled or never-exported metric is reported (the check can fail)', async () => {
  const names = await known();
  assert.deepEqual(
    unknownNames(
      [
        { where: 'typo', expr: 'sum(rate(vecsync_events_procesed_total[5m]))' },
        // The name before the prefix fix: default metrics were vecsync_process_process_*.
        { where: 'old prefix', expr: 'rate(vecsync_process_process_cpu_seconds_total[1m])' },
      ],
      names,
    ),
    ['typo: vecsync_events_procesed_total', 'old prefix: vecsync_process_process_cpu_seconds_total'],
  );
});
