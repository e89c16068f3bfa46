/**
 * The status page: `PipelineStatus` (the same object `vecsync status --json` prints) rendered as
 * one HTML document. Pure; every figure carries a `data-field` naming its JSON path, so a test (or
 * a script) can read the page back and compare it with the JSON, and the JSON the page was
 * rendered from is embedded as `#status-data`.
 */
import type { PipelineStatus } from '../status/index.ts';

export interface PageOptions {
  /** Seconds between reloads; 0: none. */
  refreshSeconds?: number;
  /** This process's health (`GET /healthz`), when it runs consumers. */
  health?: { healthy: boolean; failing: string[] } | null;
  generatedAt?: Date;
}

/** Component states that mean "working" (the stack reports `up`). */
const HEALTHY_STATES = new Set(['up', 'running', 'healthy']);

const esc = (v: unknown): string =>
  String(v ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** A figure: its value as text, and the JSON path it comes from. */
function fig(
  path: string,
  value: unknown,
  shown: string = value === null || value === undefined ? '–' : String(value),
): string {
  return `<span class="fig" data-field="${esc(path)}" data-value="${esc(value === null || value === undefined ? '' : value)}">${esc(shown)}</span>`;
}

function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function bytes(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export function renderStatusPage(s: PipelineStatus, options: PageOptions = {}): string {
  const refresh = options.refreshSeconds ?? 10;
  const components = Object.entries(s.components).map(([name, c]) => [
    esc(name),
    `<span class="state ${HEALTHY_STATES.has(c.state) ? 'ok' : 'bad'}">${fig(`components.${name}.state`, c.state)}</span>`,
    fig(`components.${name}.port`, c.port),
    fig(`components.${name}.pid`, c.pid),
    esc(c.version),
  ]);
  const lanes = Object.entries(s.outbox).map(([lane, o]) => [
    esc(lane),
    fig(`outbox.${lane}.queued`, o.queued),
    fig(`outbox.${lane}.failed`, o.failed),
    fig(
      `outbox.${lane}.oldest_unapplied_age_seconds`,
      o.oldest_unapplied_age_seconds,
      `${o.oldest_unapplied_age_seconds.toFixed(1)} s`,
    ),
  ]);
  const groups = s.consumer_groups.map((g, i) => [
    esc(g.group),
    esc(g.topic),
    fig(`consumer_groups.${i}.lag`, g.lag),
    fig(`consumer_groups.${i}.partitions`, g.partitions),
  ]);
  const dlq = Object.entries(s.dlq).map(([service, n]) => [esc(service), fig(`dlq.${service}`, n)]);
  const slots = s.replication_slots.map((slot, i) => [
    esc(slot.slot_name),
    `<span class="state ${slot.active ? 'ok' : 'bad'}">${fig(`replication_slots.${i}.active`, slot.active, slot.active ? 'active' : 'INACTIVE')}</span>`,
    fig(`replication_slots.${i}.retained_wal_bytes`, slot.retained_wal_bytes, bytes(slot.retained_wal_bytes)),
  ]);
  const vectors = s.vector_status.map((v, i) => [
    esc(v.model_key),
    esc(v.tenant_id),
    fig(`vector_status.${i}.documents`, v.documents),
    fig(`vector_status.${i}.last_applied_at`, v.last_applied_at),
    fig(
      `vector_status.${i}.oldest_unapplied_age_seconds`,
      v.oldest_unapplied_age_seconds,
      `${v.oldest_unapplied_age_seconds.toFixed(1)} s`,
    ),
    fig(`vector_status.${i}.unapplied_events`, v.unapplied_events),
    fig(`vector_status.${i}.index_rows_changed_since_build`, v.index_rows_changed_since_build),
    fig(`vector_status.${i}.last_index_build_at`, v.last_index_build_at),
    fig(`vector_status.${i}.last_analyze_at`, v.last_analyze_at),
    fig(`vector_status.${i}.drift_pct`, v.drift_pct, v.drift_pct === null ? '–' : `${v.drift_pct} %`),
    fig(`vector_status.${i}.model_state`, v.model_state),
    fig(
      `vector_status.${i}.backfill_state`,
      v.backfill_state,
      v.backfill_state === null ? '–' : `${v.backfill_state} ${v.backfill_done ?? 0}/${v.backfill_total ?? '?'}`,
    ),
  ]);
  const m = s.maintenance;
  const health = options.health;
  const overallOk =
    s.errors.length === 0 &&
    Object.values(s.components).every((c) => HEALTHY_STATES.has(c.state)) &&
    s.replication_slots.every((slot) => slot.active) &&
    (health ? health.healthy : true);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vecsync status</title>
${refresh > 0 ? `<meta http-equiv="refresh" content="${refresh}">` : ''}
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;min-width:30rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}.fig{font-variant-numeric:tabular-nums}.ok{color:#186a1b;font-weight:600}.bad{color:#b00020;font-weight:600}
.banner{padding:.5rem .8rem;border-radius:4px;display:inline-block}.banner.ok{background:#e6f4e7}.banner.bad{background:#fde7ea}
.empty{color:#777}
</style></head>
<body>
<h1>vecsync status</h1>
<p><span id="overall" class="banner ${overallOk ? 'ok' : 'bad'}">${overallOk ? 'healthy' : 'attention needed'}</span>
 generated ${esc((options.generatedAt ?? new Date()).toISOString())}${
   health
     ? ` · this process: <span id="process-health" class="${health.healthy ? 'ok' : 'bad'}">${health.healthy ? 'consumers running' : `unhealthy (${esc(health.failing.join(', '))})`}</span>`
     : ''
 }</p>
${s.errors.length > 0 ? `<ul id="errors">${s.errors.map((e) => `<li class="bad">${esc(e)}</li>`).join('')}</ul>` : ''}
<h2>Components</h2>
${table(['component', 'state', 'port', 'pid', 'version'], components, 'no stack components')}
<h2>Freshness and backlog per lane (outbox)</h2>
${table(['lane', 'queued', 'failed', 'oldest unapplied age'], lanes, 'no outbox')}
<h2>Consumer groups</h2>
${table(['group', 'topic', 'lag', 'partitions'], groups, 'no consumer groups')}
<h2>Dead letters</h2>
${table(['service', 'messages'], dlq, 'no dead-letter topics')}
<h2>Replication slot</h2>
${table(['slot', 'state', 'retained WAL'], slots, 'no replication slot')}
<h2>Vector indexes: drift, maintenance, backfill and re-embed</h2>
<p>pgvector maintenance: ${fig('maintenance.queued', m.queued)} queued, ${fig('maintenance.running', m.running)} running, ${fig('maintenance.failed', m.failed)} failed; last done ${fig('maintenance.last_done_at', m.last_done_at)}</p>
${table(
  [
    'model',
    'tenant',
    'documents',
    'last applied',
    'oldest unapplied',
    'unapplied',
    'rows changed since index build',
    'last index build',
    'last analyze',
    'drift',
    'model state',
    'backfill',
  ],
  vectors,
  'no vector status for this sink (nothing applied yet, or migration 0010 not applied)',
)}
<script type="application/json" id="status-data">${JSON.stringify(s).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
