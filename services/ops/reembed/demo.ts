/**
 * `vecsync demo --reembed`: after the demo corpus is synced, a blue/green re-embed to the next
 * model: its embedder and writer run in this process, the backfill runs on the bulk lane, then the
 * compare (with golden-set recall for both models), a search before and after the cutover, and a
 * rollback that leaves the demo serving its configured model again (the demo model is retired and
 * its index dropped, so the next `npm start` starts clean).
 */
import pg from 'pg';
import { loadConfig, type Config } from '../../config/index.ts';
import { createSink, type Sink } from '../../adapters/sinks/index.ts';
import { setModelState, type EmbeddingModel } from '../../adapters/postgres/models.ts';
import { SERVICE_FACTORIES } from '../../pipeline/index.ts';
import { createRuntime } from '../../pipeline/runtime/index.ts';
import type { Service } from '../../pipeline/runtime/service.ts';
import { runInForeground } from '../backfill/cli.ts';
import { DEMO_TENANTS } from '../demo/corpus.ts';
import { addGoldenQueries } from './recall.ts';
import { compareModels, cutover, embedderFor, indexOf, reembedModels, rollback, startReembed } from './index.ts';

function step(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

async function showSearch(pool: pg.Pool, config: Config, sink: Sink, model: EmbeddingModel, text: string) {
  const [vector] = await embedderFor(config, model).embed([text]);
  const hits = await sink.search({
    modelKey: model.modelKey,
    tenantId: 'demo-acme',
    principal: 'group:engineering',
    vector: vector!,
    topK: 3,
  });
  process.stdout.write(`  ${model.modelKey}: "${text}"\n`);
  for (const h of hits) {
    const title = await pool.query<{ title: string }>(
      'SELECT title FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2',
      ['demo-acme', h.documentId],
    );
    process.stdout.write(`    ${h.score.toFixed(3)}  ${h.documentId}  ${title.rows[0]?.title ?? ''}\n`);
  }
}

export async function runReembedDemo(options: { to: string; dimensions?: number; rate?: number }): Promise<void> {
  const base = loadConfig({ VECSYNC_LOG_LEVEL: 'error', ...process.env, VECSYNC_METRICS_PORT: '0' });
  const pool = new pg.Pool({ connectionString: base.sourceUrl, max: 4 });
  const sink = await createSink(base);
  const services: Service[] = [];
  try {
    step(`re-embed: golden set`);
    // A golden set from the corpus: each of a few documents' titles should find that document.
    const golden = await pool.query<{ tenant_id: string; document_id: string; title: string }>(
      `SELECT tenant_id, document_id, title FROM vecsync.documents
        WHERE tenant_id = ANY($1) AND status = 'active' ORDER BY tenant_id, document_id LIMIT 20`,
      [DEMO_TENANTS],
    );
    await addGoldenQueries(
      pool,
      golden.rows.map((r) => ({ tenant: r.tenant_id, query: r.title, expected: r.document_id, principal: null })),
    );
    process.stdout.write(`${golden.rows.length} golden queries (title → document)\n`);

    step(`re-embed --to ${options.to}`);
    const { reembed, model } = await startReembed(pool, base, sink, {
      to: options.to,
      ...(options.dimensions ? { dimensions: options.dimensions } : {}),
      rate: options.rate ?? 1000,
    });
    process.stdout.write(`${reembed.from.key} → ${reembed.to.key}: index created, backfill ${reembed.backfillId}\n`);
    // The new model's own deployment (its consumer groups carry its model key).
    const config = loadConfig({
      VECSYNC_LOG_LEVEL: 'error',
      ...process.env,
      VECSYNC_METRICS_PORT: '0',
      VECSYNC_EMBEDDER: model.embedder,
      VECSYNC_EMBEDDING_MODEL: model.name,
      VECSYNC_EMBEDDING_VERSION: String(model.version),
      VECSYNC_EMBEDDING_DIMENSIONS: String(model.dimensions),
    });
    const rt = await createRuntime(config, 'demo-reembed', { newGroupsAtEnd: true });
    services.push(await SERVICE_FACTORIES.embedder(rt), await SERVICE_FACTORIES.writer(rt));
    await Promise.all(services.map((s) => s.start()));
    await runInForeground(pool, reembed.backfillId!);
    const wanted = await demoActive(pool);
    for (;;) {
      const res = await pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM vecsync.sync_state WHERE sink_name = $1 AND model_key = $2 AND tenant_id = ANY($3) AND NOT tombstone',
        [base.sink.name, model.modelKey, DEMO_TENANTS],
      );
      if (Number(res.rows[0]!.n) >= wanted) break;
      await new Promise((r) => setTimeout(r, 500));
    }

    step('compare (dry run)');
    const { from, to } = await reembedModels(pool, base);
    let compare = await compareModels(pool, base, sink, from, to, { queries: 20, k: 10, tenants: [...DEMO_TENANTS] });
    for (let i = 0; !compare.clean && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      compare = await compareModels(pool, base, sink, from, to, { queries: 20, k: 10, tenants: [...DEMO_TENANTS] });
    }
    const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
    process.stdout.write(
      `documents old ${compare.documents.old} / new ${compare.documents.new}, missing ${compare.documents.missing_in_new}, extra ${compare.documents.extra_in_new}, ` +
        `version mismatch ${compare.version_mismatch}, ACL mismatch ${compare.acl_mismatch}\n` +
        `top-${compare.topk.k} overlap ${pct(compare.topk_overlap)}; recall@${compare.recall.k}: ${from.modelKey} ${pct(compare.recall.old)}, ${to.modelKey} ${pct(compare.recall.new)}\n`,
    );

    const query = 'postgres replication failover standby';
    step('search before the cutover');
    await showSearch(pool, base, sink, from, query);
    step('cutover');
    await cutover(pool, base, sink, { force: !compare.clean });
    process.stdout.write(`${to.modelKey} now serves sink ${base.sink.name} (vecsync models list)\n`);
    step('search after the cutover');
    await showSearch(pool, base, sink, to, query);

    step('rollback (the demo leaves its configured model serving)');
    await rollback(pool, base);
    await setModelState(pool, to, 'retired');
    await sink.dropIndex(indexOf(to));
    await pool.query('DELETE FROM vecsync.sync_state WHERE sink_name = $1 AND model_key = $2', [
      base.sink.name,
      to.modelKey,
    ]);
    await pool.query(`UPDATE vecsync.reembeds SET state = 'retired', retired_at = now() WHERE id = $1`, [reembed.id]);
    process.stdout.write(`${from.modelKey} serves again; ${to.modelKey} retired and its index dropped\n`);
    await Promise.allSettled(services.map((s) => s.stop()));
    services.length = 0;
    await rt.close();
  } finally {
    await Promise.allSettled(services.map((s) => s.stop()));
    await sink.close();
    await pool.end();
  }
}

async function demoActive(pool: pg.Pool): Promise<number> {
  const res = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM vecsync.documents WHERE tenant_id = ANY($1) AND status = 'active'`,
    [DEMO_TENANTS],
  );
  return Number(res.rows[0]!.n);
}
