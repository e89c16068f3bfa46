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
import { getModel, type EmbeddingModel } from '../../adapters/postgres/models.ts';
import { SERVICE_FACTORIES } from '../../pipeline/index.ts';
import { createRuntime } from '../../pipeline/runtime/index.ts';
import type { Service } from '../../pipeline/runtime/service.ts';
import { runInForeground } from '../backfill/cli.ts';
import { getBackfill, pauseBackfill } from '../backfill/store.ts';
import { DEMO_ARTICLES, DEMO_TENANTS } from '../demo/corpus.ts';
import { addGoldenQueries } from './recall.ts';
import {
  compareModels,
  cutover,
  dropModel,
  embedderFor,
  latestReembed,
  reembedModels,
  rollback,
  setReembedState,
  startReembed,
} from './index.ts';

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
  let undo: () => Promise<void> = async () => undefined;
  try {
    step(`re-embed: golden set`);
    // The golden set: each prose article's paraphrase (few words in common) should find the
    // article, searched as its reader. Replaces what earlier demo runs registered.
    await pool.query('DELETE FROM vecsync.golden_queries WHERE tenant_id = ANY($1)', [DEMO_TENANTS]);
    await addGoldenQueries(
      pool,
      DEMO_ARTICLES.map((a) => ({
        tenant: a.tenant_id,
        query: a.paraphrase,
        expected: a.document_id,
        principal: a.reader,
      })),
    );
    process.stdout.write(`${DEMO_ARTICLES.length} golden queries (paraphrase → article)\n`);

    step(`re-embed --to ${options.to}`);
    const { reembed, model } = await startReembed(pool, base, sink, {
      to: options.to,
      ...(options.dimensions ? { dimensions: options.dimensions } : {}),
      rate: options.rate ?? 1000,
      // The demo's tenants only: the database may hold other work (tests, benchmarks).
      tenants: [...DEMO_TENANTS],
    });
    process.stdout.write(`${reembed.from.key} → ${reembed.to.key}: index created, backfill ${reembed.backfillId}\n`);
    undo = () => undoReembed(pool, base, sink, reembed.id);
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
    await cutover(pool, base, sink, { force: !compare.clean, tenants: [...DEMO_TENANTS] });
    process.stdout.write(`${to.modelKey} now serves sink ${base.sink.name} (vecsync models list)\n`);
    step('search after the cutover');
    await showSearch(pool, base, sink, to, query);

    step('rollback (the demo leaves its configured model serving)');
    await rollback(pool, base);
    await undo();
    process.stdout.write(`${from.modelKey} serves again; ${to.modelKey} retired and its index dropped\n`);
    await Promise.allSettled(services.map((s) => s.stop()));
    services.length = 0;
    await rt.close();
  } catch (error) {
    // Interrupted or failed: leave nothing half-done behind (a model in `backfilling` would make
    // the triggers enqueue every change for it).
    await Promise.allSettled(services.map((s) => s.stop()));
    services.length = 0;
    await undo().catch(() => undefined);
    throw error;
  } finally {
    await Promise.allSettled(services.map((s) => s.stop()));
    await sink.close();
    await pool.end();
  }
}

/**
 * Retires the demo's re-embed: the configured model serves again, the new model is retired, its
 * backfill stopped, its index dropped and its ledger rows removed.
 */
async function undoReembed(pool: pg.Pool, config: Config, sink: Sink, reembedId: number): Promise<void> {
  const r = await latestReembed(pool, config.sink.name);
  if (!r || r.id !== reembedId) return;
  if (r.state === 'serving') await rollback(pool, config);
  const to = await getModel(pool, r.to.name, r.to.version);
  if (to) await dropModel(pool, config, sink, to);
  if (r.backfillId !== null && (await getBackfill(pool, r.backfillId))?.state === 'running') {
    await pauseBackfill(pool, r.backfillId);
  }
  await setReembedState(pool, reembedId, 'retired', 'retired_at');
}

async function demoActive(pool: pg.Pool): Promise<number> {
  const res = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM vecsync.documents WHERE tenant_id = ANY($1) AND status = 'active'`,
    [DEMO_TENANTS],
  );
  return Number(res.rows[0]!.n);
}
