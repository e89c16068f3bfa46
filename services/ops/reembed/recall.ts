/**
 * Retrieval quality: recall@k of the golden set (`vecsync.golden_queries`: per tenant, a query and
 * the document it should find) for one model's index, exported as `vecsync_retrieval_recall`.
 */
import type pg from 'pg';
import type { Embedder } from '../../adapters/embedding/index.ts';
import type { EmbeddingModel } from '../../adapters/postgres/models.ts';
import type { Sink } from '../../adapters/sinks/types.ts';
import { metrics } from '../../adapters/telemetry/metrics.ts';

export interface TenantRecall {
  tenant: string;
  queries: number;
  hits: number;
  recall: number | null;
}

export interface RecallScore {
  model: string;
  k: number;
  queries: number;
  hits: number;
  tenants: TenantRecall[];
}

export interface GoldenQuery {
  tenant: string;
  query: string;
  expected: string;
  principal: string | null;
}

/** Adds golden queries (idempotent: the same triple twice is one row). */
export async function addGoldenQueries(db: Pick<pg.Pool, 'query'>, queries: GoldenQuery[]): Promise<void> {
  if (queries.length === 0) return;
  await db.query(
    `INSERT INTO vecsync.golden_queries (tenant_id, query, expected_document_id, principal)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     ON CONFLICT (tenant_id, query, expected_document_id) DO UPDATE SET principal = EXCLUDED.principal`,
    [
      queries.map((q) => q.tenant),
      queries.map((q) => q.query),
      queries.map((q) => q.expected),
      queries.map((q) => q.principal),
    ],
  );
}

/**
 * Searches every golden query (of `tenants`, or all) in the model's index as its principal (or the
 * first principal of the expected document's ACL) and counts the expected document in the top k.
 */
export async function scoreRecall(
  db: Pick<pg.Pool, 'query'>,
  sink: Sink,
  model: EmbeddingModel,
  embedder: Embedder,
  options: { k?: number; tenants?: string[] | undefined } = {},
): Promise<RecallScore> {
  const k = options.k ?? 10;
  const res = await db.query<{
    tenant_id: string;
    query: string;
    expected_document_id: string;
    principal: string | null;
  }>(
    `SELECT g.tenant_id, g.query, g.expected_document_id,
            coalesce(g.principal, (SELECT min(a.principal) FROM vecsync.document_acl a
                                    WHERE a.tenant_id = g.tenant_id AND a.document_id = g.expected_document_id)) AS principal
       FROM vecsync.golden_queries g
      WHERE $1::text[] IS NULL OR g.tenant_id = ANY($1)
      ORDER BY g.tenant_id, g.query`,
    [options.tenants ?? null],
  );
  const byTenant = new Map<string, TenantRecall>();
  for (const row of res.rows) {
    const t = byTenant.get(row.tenant_id) ?? { tenant: row.tenant_id, queries: 0, hits: 0, recall: null };
    byTenant.set(row.tenant_id, t);
    t.queries++;
    if (row.principal === null) continue; // nobody may see the expected document: a miss
    const [vector] = await embedder.embed([row.query]);
    const hits = await sink.search({
      modelKey: model.modelKey,
      tenantId: row.tenant_id,
      principal: row.principal,
      vector: vector!,
      topK: k,
    });
    if (hits.some((h) => h.documentId === row.expected_document_id)) t.hits++;
  }
  const tenants = [...byTenant.values()].map((t) => ({ ...t, recall: t.queries > 0 ? t.hits / t.queries : null }));
  for (const t of tenants) {
    if (t.recall !== null)
      metrics.retrievalRecall.set({ model: model.modelKey, tenant: t.tenant, k: String(k) }, t.recall);
  }
  return {
    model: model.modelKey,
    k,
    queries: tenants.reduce((n, t) => n + t.queries, 0),
    hits: tenants.reduce((n, t) => n + t.hits, 0),
    tenants,
  };
}
