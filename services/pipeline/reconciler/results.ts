/**
 * The last reconcile result per sink, model and tenant (`vecsync.reconcile_results`), which
 * `vecsync.vector_status` turns into a drift percentage. Written at the end of every pass, by the
 * service and by `vecsync reconcile` alike.
 */
import type pg from 'pg';
import { DriftKind, type DriftCounts } from '../../domain/transforms/drift.ts';

/** Kinds that count documents (orphan_chunks counts chunks; count_mismatch flags a tenant). */
const DOCUMENT_KINDS: readonly DriftKind[] = [
  DriftKind.missing,
  DriftKind.ghost,
  DriftKind.stale,
  DriftKind.aclMismatch,
];

export interface TenantResult {
  tenant: string;
  sourceDocuments: number;
  driftDocuments: number;
  drift: DriftCounts;
}

/** Pure: one row per tenant of a pass. */
export function tenantResults(
  tenants: Record<string, DriftCounts>,
  counts: Record<string, { source: number }>,
): TenantResult[] {
  return Object.entries(tenants).map(([tenant, drift]) => ({
    tenant,
    sourceDocuments: counts[tenant]?.source ?? 0,
    driftDocuments: DOCUMENT_KINDS.reduce((n, kind) => n + (drift[kind] ?? 0), 0),
    drift,
  }));
}

export async function saveReconcileResults(
  source: pg.Pool,
  scope: { sinkName: string; modelKey: string; mode: string },
  results: TenantResult[],
): Promise<void> {
  if (results.length === 0) return;
  await source.query(
    `INSERT INTO vecsync.reconcile_results AS r
       (sink_name, model_key, tenant_id, finished_at, mode, source_documents, drift_documents, drift)
     SELECT $1, $2, t, now(), $3, s, d, j FROM unnest($4::text[], $5::bigint[], $6::bigint[], $7::jsonb[]) AS u(t, s, d, j)
     ON CONFLICT (sink_name, model_key, tenant_id) DO UPDATE SET
       finished_at = excluded.finished_at, mode = excluded.mode, source_documents = excluded.source_documents,
       drift_documents = excluded.drift_documents, drift = excluded.drift`,
    [
      scope.sinkName,
      scope.modelKey,
      scope.mode,
      results.map((r) => r.tenant),
      results.map((r) => r.sourceDocuments),
      results.map((r) => r.driftDocuments),
      results.map((r) => JSON.stringify(r.drift)),
    ],
  );
}
