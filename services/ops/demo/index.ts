/**
 * `npm start`: the demo on the embedded defaults (local stack, pgvector sink, minilm embedder).
 * It brings the stack up, migrates, applies the connector, runs every service in this process,
 * writes a corpus through plain SQL (the way an application would), waits until it is synced,
 * searches it by meaning with permissions (paraphrase queries with a known right answer), and
 * measures freshness.
 */
import { spawn } from 'node:child_process';
import cliProgress from 'cli-progress';
import pg from 'pg';
import { loadConfig, type Config } from '../../config/index.ts';
import { createEmbedder } from '../../adapters/embedding/index.ts';
import { startMetricsServer } from '../../adapters/telemetry/metrics.ts';
import { SERVICE_FACTORIES, SERVICE_NAMES } from '../../pipeline/index.ts';
import type { Service } from '../../pipeline/runtime/service.ts';
import { createRuntime } from '../../pipeline/runtime/index.ts';
import { createSink } from '../../adapters/sinks/index.ts';
import { collectStatus, formatStatus } from '../status/index.ts';
import { DEMO_ARTICLES, DEMO_TENANTS, generateCorpus, type DemoDocument } from './corpus.ts';
import { percentile } from '../../domain/percentile.ts';
import { assetPath } from '../../domain/assets.ts';
import { withTransaction } from '../../adapters/postgres/pool.ts';

const BIN = assetPath('bin', 'vecsync.mjs');

function step(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

function runCli(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'inherit' });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`vecsync ${args.join(' ')} exited with ${code}`)),
    );
  });
}

/** Writes documents the way an application does: ACL rows and the document in one transaction. */
export async function writeDocuments(pool: pg.Pool, docs: DemoDocument[]): Promise<void> {
  await withTransaction(pool, async (client) => {
    // ACL first: the document's insert then carries its ACL in the same event.
    await client.query(
      `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal)
       SELECT t, d, p FROM unnest($1::text[], $2::text[], $3::text[]) AS u(t, d, p) ON CONFLICT DO NOTHING`,
      [
        docs.flatMap((d) => d.acl.map(() => d.tenant_id)),
        docs.flatMap((d) => d.acl.map(() => d.document_id)),
        docs.flatMap((d) => d.acl),
      ],
    );
    await client.query(
      `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status, metadata, restricted)
       SELECT t, d, ti, b, 'en', 'active', m::jsonb, r::jsonb
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(t, d, ti, b, m, r)`,
      [
        docs.map((d) => d.tenant_id),
        docs.map((d) => d.document_id),
        docs.map((d) => d.title),
        docs.map((d) => d.body),
        docs.map((d) => JSON.stringify(d.metadata)),
        docs.map((d) => JSON.stringify(d.restricted)),
      ],
    );
  });
}

/** Documents of `tenants` whose current version is applied in the sink's ledger. */
export async function countSynced(
  pool: pg.Pool,
  config: Config,
  tenants: readonly string[],
  modelKey: string,
): Promise<number> {
  const res = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM vecsync.documents d
       JOIN vecsync.sync_state s ON s.tenant_id = d.tenant_id AND s.document_id = d.document_id
      WHERE d.tenant_id = ANY($1) AND s.sink_name = $2 AND s.model_key = $3
        AND s.version = d.version AND s.acl_version = d.acl_version AND NOT s.tombstone`,
    [tenants, config.sink.name, modelKey],
  );
  return Number(res.rows[0]!.n);
}

export async function runDemo(options: { documents: number; skipStack?: boolean }): Promise<void> {
  const started = Date.now();
  if (!options.skipStack) {
    step('stack');
    await runCli(['stack', 'up']);
    step('migrate');
    await runCli(['migrate']);
    step('connectors');
    await runCli(['connectors', 'apply']);
  }
  const config = loadConfig({
    VECSYNC_LOG_LEVEL: 'error',
    ...process.env,
    VECSYNC_METRICS_PORT: process.env.VECSYNC_METRICS_PORT ?? '0',
  });
  step(`services (${SERVICE_NAMES.join(', ')}) in this process`);
  // The demo writes its own corpus after its services start: nothing older is its work.
  const rt = await createRuntime(config, 'demo', { newGroupsAtEnd: true });
  const metricsServer = await startMetricsServer(config.metrics.host, config.metrics.port);
  process.stdout.write(`metrics: http://${config.metrics.host}:${metricsServer.port}/metrics\n`);
  const services: Service[] = [];
  for (const name of SERVICE_NAMES) services.push(await SERVICE_FACTORIES[name](rt));
  await Promise.all(services.map((s) => s.start()));
  const sink = await createSink(config);
  const embedder = createEmbedder({ ...config.embedder, retry: config.retry });
  try {
    step(
      `corpus: ${options.documents + DEMO_ARTICLES.length} documents across ${DEMO_TENANTS.length} tenants (embedder ${config.embedder.type})`,
    );
    // A fresh corpus each run: remove the previous one (the deletes flow through the priority lane).
    await rt.source.query('DELETE FROM vecsync.documents WHERE tenant_id = ANY($1)', [DEMO_TENANTS]);
    await rt.source.query('DELETE FROM vecsync.document_acl WHERE tenant_id = ANY($1)', [DEMO_TENANTS]);
    // The generated notes, and a few prose articles the paraphrase searches below should find.
    const corpus: DemoDocument[] = [...generateCorpus(options.documents), ...DEMO_ARTICLES];
    const writeStart = Date.now();
    for (let i = 0; i < corpus.length; i += 250) await writeDocuments(rt.source, corpus.slice(i, i + 250));
    process.stdout.write(`committed in ${Date.now() - writeStart} ms\n`);

    const bar = new cliProgress.SingleBar(
      { format: 'syncing [{bar}] {value}/{total} documents  {duration}s' },
      cliProgress.Presets.shades_classic,
    );
    bar.start(corpus.length, 0);
    const syncStart = Date.now();
    let synced = 0;
    while (synced < corpus.length) {
      await new Promise((r) => setTimeout(r, 250));
      synced = await countSynced(rt.source, config, DEMO_TENANTS, rt.activeIndex.modelKey);
      bar.update(synced);
      // A local model on a small machine embeds some tens of chunks per second.
      if (Date.now() - syncStart > 900_000)
        throw new Error(`demo corpus not synced after 900 s (${synced}/${corpus.length})`);
    }
    bar.stop();
    const syncMs = Date.now() - writeStart;
    process.stdout.write(
      `synced ${corpus.length} documents in ${(syncMs / 1000).toFixed(1)} s (${Math.round((corpus.length * 1000) / syncMs)} documents/s)\n`,
    );

    step(`permission-filtered searches by meaning (${config.embedder.type})`);
    // Each query paraphrases one article (few shared words); the article's readers should get it
    // first, and a principal outside its ACL must not see it at all.
    const queries: { tenant: string; principal: string; text: string; expected?: string }[] = [];
    for (const a of DEMO_ARTICLES) {
      queries.push({ tenant: a.tenant_id, principal: a.reader, text: a.paraphrase, expected: a.document_id });
    }
    const first = DEMO_ARTICLES[0]!;
    queries.push({ tenant: first.tenant_id, principal: 'group:finance', text: first.paraphrase });
    queries.push({ tenant: first.tenant_id, principal: 'user:nobody', text: first.paraphrase });
    let rightFirst = 0;
    for (const { tenant, principal, text, expected } of queries) {
      const [vector] = await embedder.embed([text]);
      const hits = await sink.search({
        modelKey: rt.activeIndex.modelKey,
        tenantId: tenant,
        principal,
        vector: vector!,
        topK: 3,
      });
      process.stdout.write(`\n${tenant} as ${principal}: "${text}"\n`);
      if (hits.length === 0) process.stdout.write('  (nothing this principal may see)\n');
      for (const h of hits) {
        const title = await rt.source.query<{ title: string }>(
          'SELECT title FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2',
          [tenant, h.documentId],
        );
        process.stdout.write(
          `  ${h.score.toFixed(3)}  ${h.documentId}#${h.chunkIndex}  ${title.rows[0]?.title ?? ''}\n`,
        );
      }
      if (expected) {
        const top = hits[0]?.documentId === expected;
        if (top) rightFirst++;
        process.stdout.write(`  ${top ? '✓' : '✗'} right answer: ${expected}${top ? ' first' : ' not first'}\n`);
      } else if (hits.some((h) => h.documentId === first.document_id)) {
        throw new Error(`${principal} was shown ${first.document_id}, which it may not read`);
      } else {
        process.stdout.write(`  ✓ ${first.document_id} is not shown to ${principal}\n`);
      }
    }
    const withAnswer = queries.filter((q) => q.expected).length;
    process.stdout.write(`\nright answer first for ${rightFirst} of ${withAnswer} paraphrase queries\n`);

    step('freshness: commit → applied in the sink (20 single-document updates, one at a time)');
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      const doc = corpus[i * 7]!;
      const t0 = Date.now();
      const res = await rt.source.query<{ version: string }>(
        `UPDATE vecsync.documents SET body = body || $3 WHERE tenant_id = $1 AND document_id = $2 RETURNING version`,
        [doc.tenant_id, doc.document_id, ` Freshness probe ${i}.`],
      );
      const version = Number(res.rows[0]!.version);
      for (;;) {
        const row = await rt.source.query<{ version: string }>(
          'SELECT version FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3 AND model_key = $4',
          [config.sink.name, doc.tenant_id, doc.document_id, rt.activeIndex.modelKey],
        );
        if (Number(row.rows[0]?.version ?? 0) >= version) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      samples.push(Date.now() - t0);
    }
    process.stdout.write(
      `p50 ${percentile(samples, 50)} ms, p99 ${percentile(samples, 99)} ms, max ${Math.max(...samples)} ms (n=${samples.length})\n`,
    );

    step('status');
    process.stdout.write(formatStatus(await collectStatus(config)) + '\n');
    process.stdout.write(
      `\ndemo finished in ${((Date.now() - started) / 1000).toFixed(1)} s; the stack keeps running (vecsync stack down stops it)\n`,
    );
  } finally {
    await Promise.allSettled(services.map((s) => s.stop()));
    await sink.close();
    await rt.close();
    await metricsServer.close();
  }
}
