/**
 * Priority lane benchmark: commit → effect for deletes and revokes, where the effect is that the
 * document no longer appears in the principal's search. Measured with the pipeline idle, then
 * while a bulk backfill of BENCH_BACKFILL_DOCS (default 50,000) documents is being embedded.
 *
 * The backfill is a blue/green re-embed: a bench-only model (`bench-<run>`, state backfilling) is
 * registered, and every backfill document is enqueued on the bulk lane for it, the way a re-embed
 * does. The bench pipeline serves that model; afterwards the model is retired, so other
 * deployments skip what is left of the backfill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { chunkTableName } from '../services/adapters/sinks/pgvector/naming.ts';
import { createEmbedder, type Embedder } from '../services/adapters/embedding/index.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import {
  insertDocuments,
  searchIds,
  startPipeline,
  waitForVersion,
  type TestPipeline,
} from '../test/support/pipeline.ts';
import { waitFor } from '../test/support/wait.ts';
import { percentile } from '../services/domain/percentile.ts';
import { machine } from './cpu.ts';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const BACKFILL = Number(process.env.BENCH_BACKFILL_DOCS ?? 50_000);
/** `vecsync backfill start --rate`: documents per second enqueued on the bulk lane. */
const BACKFILL_RATE = Number(process.env.BENCH_BACKFILL_RATE ?? 5_000);
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'vecsync.mjs');
const PROBES = Number(process.env.BENCH_PROBES ?? 200);

function summary(ms: number[]) {
  return { n: ms.length, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99), maxMs: Math.max(...ms) };
}

async function visible(
  p: TestPipeline,
  embedder: Embedder,
  tenant: string,
  principal: string,
  text: string,
  doc: string,
): Promise<boolean> {
  return (await searchIds(p, embedder, tenant, principal, text, 5)).includes(doc);
}

/** Time from just before the COMMIT of `change` until the search no longer shows the document. */
async function timeToEffect(
  p: TestPipeline,
  embedder: Embedder,
  probe: { tenant: string; doc: string; text: string; principal: string },
  change: (client: pg.PoolClient) => Promise<void>,
): Promise<number> {
  const client = await p.source.connect();
  let t0: number;
  try {
    await client.query('BEGIN');
    await change(client);
    t0 = performance.now();
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  await waitFor(async () => !(await visible(p, embedder, probe.tenant, probe.principal, probe.text, probe.doc)), {
    timeoutMs: 60_000,
    intervalMs: 2,
    description: `${probe.doc} gone for ${probe.principal}`,
  });
  return performance.now() - t0;
}

interface Probes {
  tenant: string;
  docs: { tenant: string; id: string; body: string; acl: string[] }[];
}

/** Creates and syncs the probe documents (before any load, so they are not queued behind it). */
async function prepare(p: TestPipeline, label: string): Promise<Probes> {
  const tenant = `bench_prio_${label}_${randomBytes(3).toString('hex')}`;
  const docs = Array.from({ length: PROBES * 2 }, (_, i) => ({
    tenant,
    id: `probe-${i}`,
    body: `Probe ${i} ${tenant}: escalation runbook for the payments cluster, section ${i}.`,
    acl: ['alice', 'bob'],
  }));
  const versions = await insertDocuments(p.source, docs);
  for (const d of docs) await waitForVersion(p, tenant, d.id, versions.get(d.id)!, 300_000);
  return { tenant, docs };
}

async function measure(
  p: TestPipeline,
  embedder: Embedder,
  { tenant, docs }: Probes,
  whileBusy?: () => Promise<boolean>,
) {
  const deletes: number[] = [];
  const revokes: number[] = [];
  let busyAtEveryProbe = true;
  for (let i = 0; i < PROBES; i++) {
    if (whileBusy && !(await whileBusy())) busyAtEveryProbe = false;
    const del = docs[2 * i]!;
    deletes.push(
      await timeToEffect(p, embedder, { tenant, doc: del.id, text: del.body, principal: 'alice' }, async (c) => {
        await c.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, del.id]);
      }),
    );
    const rev = docs[2 * i + 1]!;
    revokes.push(
      await timeToEffect(p, embedder, { tenant, doc: rev.id, text: rev.body, principal: 'bob' }, async (c) => {
        await c.query(
          `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = $2 AND principal = 'bob'`,
          [tenant, rev.id],
        );
      }),
    );
  }
  return { delete: summary(deletes), revoke: summary(revokes), busyAtEveryProbe };
}

interface RunningBackfill {
  tenant: string;
  id: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Seeds the backfill documents without triggers (no live events), then runs `vecsync backfill start` on them. */
async function startBackfill(
  source: pg.Pool,
  run: string,
  model: { name: string; version: number },
): Promise<RunningBackfill> {
  const tenant = `bench_backfill_${run}`;
  const client = await source.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    await client.query(
      `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status, metadata, restricted, version, acl_version, updated_at)
       SELECT $1, 'b-' || g, 'backfill ' || g,
              repeat('Backfill document ' || g || ' about ' || md5(g::text) || ' and the quarterly platform review. ', 12),
              'en', 'active', '{}', '{}', 1, 1, now()
         FROM generate_series(1, $2::int) g`,
      [tenant, BACKFILL],
    );
    await client.query(
      `INSERT INTO vecsync.document_acl SELECT $1, 'b-' || g, 'group:all' FROM generate_series(1, $2::int) g`,
      [tenant, BACKFILL],
    );
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  // The operator's command enqueues them on the bulk lane, paced, with its cursor in PostgreSQL.
  const child = spawn(
    process.execPath,
    [
      BIN,
      'backfill',
      'start',
      '--model',
      modelKey(model.name, model.version),
      '--tenant',
      tenant,
      '--rate',
      String(BACKFILL_RATE),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, VECSYNC_LOG_LEVEL: 'warn' } },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const id = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.on('exit', (code) => reject(new Error(`vecsync backfill start exited with ${code}`)));
  });
  return { tenant, id, child, exited };
}

export async function runPriorityBench(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const model = { name: `bench-${run}`, version: 1 };
  const base = loadConfig();
  const admin = new pg.Pool({ connectionString: base.sourceUrl, max: 2 });
  await admin.query(
    `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state, embedder)
     VALUES ($1, $2, $3, 'recursive-char', 1, $4, $5, 'backfilling', $6)`,
    [
      model.name,
      model.version,
      base.embedder.dimensions,
      base.chunking.size,
      base.chunking.overlap,
      base.embedder.type,
    ],
  );
  let backfillTenant: string | undefined;
  let backfill: RunningBackfill | undefined;
  const p = await startPipeline(`bench-prio-${run}`, {
    env: { VECSYNC_EMBEDDING_MODEL: model.name, VECSYNC_EMBEDDING_VERSION: String(model.version) },
  });
  try {
    const embedder = createEmbedder({ ...p.config.embedder, retry: p.config.retry });
    process.stdout.write(`priority lane, idle: ${PROBES} deletes and ${PROBES} revokes...\n`);
    const idle = await measure(p, embedder, await prepare(p, 'idle'));
    process.stdout.write(
      `  delete p50 ${idle.delete.p50Ms.toFixed(0)} ms p99 ${idle.delete.p99Ms.toFixed(0)} ms; revoke p50 ${idle.revoke.p50Ms.toFixed(0)} ms p99 ${idle.revoke.p99Ms.toFixed(0)} ms\n`,
    );

    process.stdout.write(`priority lane, under a bulk backfill of ${BACKFILL} documents...\n`);
    const loadedProbes = await prepare(p, 'loaded');
    const seeded = performance.now();
    backfill = await startBackfill(p.source, run, model);
    backfillTenant = backfill.tenant;
    const tenantOfBackfill = backfillTenant;
    process.stdout.write(`  seeded and enqueued in ${((performance.now() - seeded) / 1000).toFixed(1)} s\n`);
    const bulkGroup = `${p.rt.groupId('embedder')}.bulk`; // per model: <prefix>.embedder.<model key>.bulk
    const bulkLag = async () => {
      const status = await collectStatus(p.config);
      return status.consumer_groups.filter((g) => g.group === bulkGroup).reduce((n, g) => n + g.lag, 0);
    };
    // Start measuring once the backfill reaches the sink. (`backfill start` paces its enqueueing
    // by the bulk lane's lag, so the lane never holds much: the backfill is busy until it is applied.)
    await waitFor(async () => (await backfilled(p, tenantOfBackfill)) > 0, {
      timeoutMs: 120_000,
      description: 'backfill reaching the sink',
    });
    const embeddedBefore = await backfilled(p, tenantOfBackfill);
    // Busy: not every backfill document is applied yet. (One count per probe: the status view
    // that also reads the bulk lane's lag takes about a second, longer than a probe.)
    const loaded = await measure(
      p,
      embedder,
      loadedProbes,
      async () => (await backfilled(p, tenantOfBackfill)) < BACKFILL,
    );
    const embeddedAfter = await backfilled(p, tenantOfBackfill);
    const lagAfter = await bulkLag();
    process.stdout.write(
      `  delete p50 ${loaded.delete.p50Ms.toFixed(0)} ms p99 ${loaded.delete.p99Ms.toFixed(0)} ms; revoke p50 ${loaded.revoke.p50Ms.toFixed(0)} ms p99 ${loaded.revoke.p99Ms.toFixed(0)} ms\n`,
    );
    process.stdout.write(
      `  backfill documents applied while measuring: ${embeddedBefore} → ${embeddedAfter}; bulk lag at the end ${lagAfter}\n`,
    );

    const result = {
      date: new Date().toISOString(),
      conditions: {
        ...machine(),
        embedder: `${p.config.embedder.type} ${p.config.embedder.dimensions} dims`,
        probes: PROBES,
        backfillDocuments: BACKFILL,
        backfillPlannedRate: BACKFILL_RATE,
        effect: "the document no longer appears in the principal's permission-filtered search (pgvector, HNSW)",
        note: 'stack, services and load generator on this one machine; deletes and revokes one at a time',
      },
      idle,
      underBackfill: { ...loaded, backfillAppliedDuring: embeddedAfter - embeddedBefore, bulkLagAtEnd: lagAfter },
      target: { p99Ms: 500 },
    };
    await mkdir(RESULTS, { recursive: true });
    const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
    await writeFile(path.join(RESULTS, `priority-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
    const md = [
      `# Priority lane benchmark, ${result.date}`,
      '',
      `Conditions: ${result.conditions.cores} × ${result.conditions.cpu}, Node ${result.conditions.node}, ${result.conditions.embedder}; effect = ${result.conditions.effect}; ${result.conditions.note}.`,
      '',
      '| situation | delete p50 / p99 / max | revoke p50 / p99 / max |',
      '|---|---|---|',
      `| idle (${PROBES} each) | ${idle.delete.p50Ms.toFixed(0)} / ${idle.delete.p99Ms.toFixed(0)} / ${idle.delete.maxMs.toFixed(0)} ms | ${idle.revoke.p50Ms.toFixed(0)} / ${idle.revoke.p99Ms.toFixed(0)} / ${idle.revoke.maxMs.toFixed(0)} ms |`,
      `| during a ${BACKFILL}-document bulk backfill, \`--rate ${BACKFILL_RATE}\` (${PROBES} each; backfill unfinished at every probe: ${loaded.busyAtEveryProbe}) | ${loaded.delete.p50Ms.toFixed(0)} / ${loaded.delete.p99Ms.toFixed(0)} / ${loaded.delete.maxMs.toFixed(0)} ms | ${loaded.revoke.p50Ms.toFixed(0)} / ${loaded.revoke.p99Ms.toFixed(0)} / ${loaded.revoke.maxMs.toFixed(0)} ms |`,
      '',
      `Backfill documents applied while measuring: ${embeddedAfter - embeddedBefore}; bulk lag left: ${lagAfter}. Target: p99 ≤ 500 ms.`,
      '',
    ].join('\n');
    await writeFile(path.join(RESULTS, `priority-${stamp}.md`), md);
    process.stdout.write(`\n${md}\nwritten to bench/results/priority-${stamp}.{json,md}\n`);
  } finally {
    if (backfill && backfill.child.exitCode === null) {
      backfill.child.kill('SIGTERM'); // pauses it
      await backfill.exited;
    }
    await p.stop();
    // Retire the bench model: other deployments skip what is left of its backfill.
    await admin.query(`UPDATE vecsync.embedding_models SET state = 'retired' WHERE name = $1`, [model.name]);
    await admin.query('DELETE FROM vecsync.embedding_cache WHERE model_key = $1', [
      modelKey(model.name, model.version),
    ]);
    await admin.query('DELETE FROM vecsync.backfills WHERE model_name = $1', [model.name]);
    // What is left of the backfill would stay queued for a retired model: prune it (not captured).
    await admin.query('DELETE FROM vecsync.vector_sync_outbox WHERE embedding_model = $1', [model.name]);
    const sinkDb = new pg.Client({ connectionString: base.sink.pgvector.url });
    await sinkDb.connect();
    await sinkDb.query(`DROP TABLE IF EXISTS vecsync_sink.${chunkTableName(modelKey(model.name, model.version))}`);
    await sinkDb.end();
    if (backfillTenant) {
      const client = await admin.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL session_replication_role = replica');
        await client.query('DELETE FROM vecsync.document_acl WHERE tenant_id = $1', [backfillTenant]);
        await client.query('DELETE FROM vecsync.documents WHERE tenant_id = $1', [backfillTenant]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }
    await admin.end();
  }
}

async function backfilled(p: TestPipeline, tenant: string): Promise<number> {
  const res = await p.source.query<{ n: string }>(
    `SELECT count(*) AS n FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND version > 0`,
    [p.config.sink.name, tenant],
  );
  return Number(res.rows[0]!.n);
}
