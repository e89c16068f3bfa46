/** The human-readable rendering of a reconcile report (`vecsync reconcile` without `--json`). */
import { DRIFT_KINDS, hasDrift } from '../../domain/transforms/drift.ts';
import type { ReconcileReport } from './reconcile.ts';

/** true when the pass found anything wrong: sink drift or a state topic that disagrees with the source. */
export function reportHasDrift(report: ReconcileReport): boolean {
  const t = report.state_topic;
  return hasDrift(report.drift) || t.missing + t.extra + t.stale > 0;
}

export function formatReport(report: ReconcileReport): string {
  const kinds = (counts: Record<string, number>) => DRIFT_KINDS.map((k) => `${k} ${counts[k] ?? 0}`).join(', ');
  const scope = report.scope;
  const lines = [
    `reconcile (${report.mode}) sink ${scope.sink}, model ${scope.model}, ${report.stats.tenants} tenant(s)` +
      `${scope.tenants === 'all' ? '' : ` [${scope.tenants.join(', ')}]`}, settle ${scope.settle_ms} ms, ` +
      `${report.duration_ms} ms`,
    `compared: ${report.stats.source_documents} searchable documents in the source, ${report.stats.sink_documents} in the sink, ` +
      `${report.stats.state_keys} state-topic keys (${report.stats.state_messages} messages); ` +
      `${report.stats.differing_buckets} of ${report.stats.buckets} buckets differed`,
    `drift: ${kinds(report.drift)}`,
  ];
  for (const [tenant, counts] of Object.entries(report.tenants)) {
    if (!hasDrift(counts)) continue;
    const c = report.counts[tenant];
    const tally = c ? ` (documents: source ${c.source}, state topic ${c.state_topic}, sink ${c.sink})` : '';
    lines.push(`  ${tenant}: ${kinds(counts)}${tally}`);
  }
  for (const kind of DRIFT_KINDS) {
    const sample = report.samples[kind];
    if (sample.length > 0) lines.push(`  ${kind}: ${sample.join(' ')}`);
  }
  const t = report.state_topic;
  lines.push(`state topic vs source: missing ${t.missing}, extra ${t.extra}, stale ${t.stale}`);
  for (const finding of ['missing', 'extra', 'stale'] as const) {
    if (t.samples[finding].length > 0) lines.push(`  ${finding}: ${t.samples[finding].join(' ')}`);
  }
  lines.push(`in flight (changed within the settle window, not judged): ${report.pending}`);
  if (report.repair) {
    const r = report.repair;
    lines.push(
      `repair enqueued: ${r.upserts} upsert(s) on bulk, ${r.deletes} delete(s) and ${r.acls} ACL event(s) on priority, ` +
        `${r.states} state(s); ${r.ledger_resets} ledger row(s) reset; ${r.skipped} skipped (changed since judged)`,
    );
    if (reportHasDrift(report)) lines.push('run `vecsync reconcile` again once the pipeline has drained to verify');
  }
  return lines.join('\n');
}
