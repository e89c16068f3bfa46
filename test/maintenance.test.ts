/**
 * pgvector maintenance (issue 14, item 4) against the shared stack's sink database, on a chunk
 * table of its own (a unique model key), so its counters and its index belong to this test only.
 *
 * Changes more rows than VECSYNC_REINDEX_DRIFT_THRESHOLD: a reindex is queued (visible in
 * `vecsync status`), run by the maintenance worker on its own connection while a writer keeps
 * writing and a poller keeps searching, and the "rows changed since the build" counter resets.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../services/config/index.ts';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { createSink } from '../services/adapters/sinks/index.ts';
import type { DocumentWrite, IndexSpec, Sink } from '../services/adapters/sinks/types.ts';
import { chunkTableNames } from '../services/adapters/sinks/pgvector/naming.ts';
import { MAINTENANCE_APPLICATION_NAME, MaintenanceWorker } from '../services/ops/maintenance/index.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import { ensureStack } from './support/stack.ts';
import { testSinkName } from './support/pipeline.ts';
import { uniqueId } from './support/ids.ts';
import { waitFor } from './support/wait.ts';
import { ensureVectorStatusSchema } from './support/vector-status-schema.ts';

const DIMENSIONS = 64;
const THRESHOLD = 2000;

let config: Config;
let sink: Sink;
let source: pg.Pool;
let sinkDb: pg.Pool;
let worker: MaintenanceWorker;
const index: IndexSpec = { modelKey: `${uniqueId('mt').replace(/_/g, '-')}.v1`, dimensions: DIMENSIONS };
const tenant = `tenant_${uniqueId('maint')}`;

/** Deterministic pseudo-random unit vectors. */
function vector(seed: number): Float32Array {
  let x = seed * 2654435761 + 1;
  const v = new Float32Array(DIMENSIONS);
  let norm = 0;
  for (let i = 0; i < DIMENSIONS; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    v[i] = x / 2147483648 - 0.5;
    norm += v[i]! * v[i]!;
  }
  return v.map((c) => c / Math.sqrt(norm));
}

function docs(from: number, count: number, version: number): DocumentWrite[] {
  return Array.from({ length: count }, (_, k) => {
    const n = from + k;
    return {
      tenantId: tenant,
      documentId: `doc-${n}`,
      documentVersion: version,
      chunkCount: 1,
      contentHash: `h${n}.${version}`,
      title: `document ${n}`,
      metadata: {},
      chunks: [
        {
          index: 0,
          content: `content ${n} v${version}`,
          contentHash: `c${n}.${version}`,
          embedding: vector(n * 7 + version),
        },
      ],
      acl: { principals: ['alice'], aclVersion: 1 },
    };
  });
}

async function write(batch: DocumentWrite[]): Promise<void> {
  for (let i = 0; i < batch.length; i += 500) {
    const results = await sink.writeDocuments(index, batch.slice(i, i + 500));
    assert.ok(
      results.every((r) => r.ok),
      'every write is acknowledged',
    );
  }
}

async function stats() {
  return (
    await source.query<{ changes_total: string; changes_at_build: string; last_index_build_at: Date | null }>(
      `SELECT changes_total, changes_at_build, last_index_build_at FROM vecsync.sink_index_stats
        WHERE sink_name = $1 AND model_key = $2`,
      [config.sink.name, index.modelKey],
    )
  ).rows[0];
}

before(async () => {
  await ensureStack();
  config = loadConfig({ ...process.env, VECSYNC_SINK_NAME: testSinkName(), VECSYNC_LOG_LEVEL: 'warn' });
  await ensureVectorStatusSchema(config.sourceUrl);
  source = new pg.Pool({ connectionString: config.sourceUrl, max: 4 });
  sinkDb = new pg.Pool({ connectionString: config.sink.pgvector.url, max: 2 });
  sink = await createSink(config);
  await sink.ensureIndex(index);
  worker = new MaintenanceWorker({
    source,
    sinkUrl: config.sink.pgvector.url,
    sinkName: config.sink.name,
    thresholds: { reindexRows: THRESHOLD, analyzeRows: 1000 },
    log: createLogger('warn'),
    models: async () => [index.modelKey],
  });
});

after(async () => {
  await worker?.close();
  await sink?.close();
  await sinkDb?.query(`DROP TABLE IF EXISTS ${chunkTableNames(index.modelKey).qualified}`).catch(() => undefined);
  await sinkDb?.query(`DELETE FROM vecsync_sink.document_acl WHERE sink_name = $1`, [config.sink.name]);
  await source?.query(`DELETE FROM vecsync.maintenance_jobs WHERE sink_name = $1`, [config.sink.name]);
  await source?.query(`DELETE FROM vecsync.sink_index_stats WHERE sink_name = $1`, [config.sink.name]);
  await sinkDb?.end();
  await source?.end();
});

test('changing more rows than the threshold queues a reindex that runs off the write path and resets the counter', async () => {
  // Below the threshold: only the ANALYZE after bulk work is due.
  await write(docs(0, 1500, 1));
  const first = await waitFor(
    async () => {
      const [s] = await worker.sample();
      return s && s.changesTotal >= 1500 ? s : undefined;
    },
    { timeoutMs: 30_000, description: 'pg_stat to count the first 1500 inserts' },
  );
  assert.ok(first.rowsChangedSinceBuild < THRESHOLD);
  const queued1 = await worker.queue([first]);
  assert.deepEqual(
    queued1.map((j) => j.kind),
    ['analyze'],
    'ANALYZE after bulk work, no reindex below the threshold',
  );
  const analyzed = await worker.runNext();
  assert.equal(analyzed?.state, 'done', analyzed?.error ?? '');
  const analyzedAt = await waitFor(
    async () => {
      const [s] = await worker.sample();
      return s?.lastAnalyzeAt ?? undefined;
    },
    { timeoutMs: 30_000, description: 'last_analyze to be reported' },
  );
  assert.ok(analyzedAt.getTime() >= analyzed!.started_at!.getTime() - 1000);

  // Over the threshold: 1500 updates more (3000 changes since the table was built).
  await write(docs(0, 1500, 2));
  const over = await waitFor(
    async () => {
      const [s] = await worker.sample();
      return s && s.rowsChangedSinceBuild >= THRESHOLD ? s : undefined;
    },
    { timeoutMs: 30_000, description: 'pg_stat to count the updates' },
  );
  const queued2 = await worker.queue([over]);
  assert.ok(
    queued2.some((j) => j.kind === 'reindex'),
    `a reindex is queued: ${JSON.stringify(queued2)}`,
  );
  assert.deepEqual(await worker.queue([over]), [], 'never queued twice');
  const status = await collectStatus(config);
  assert.equal(status.maintenance.queued, queued2.length, 'the backlog is visible in `vecsync status`');

  // While the queue is worked off, a writer keeps writing and a poller keeps searching.
  const searches: { start: number; end: number; ok: boolean; hits: number; error?: string }[] = [];
  const writes: { start: number; end: number }[] = [];
  const reindexSeen: { pid: number; application_name: string }[] = [];
  let busy = true;
  const poller = (async () => {
    while (busy) {
      const start = Date.now();
      try {
        const hits = await sink.search({
          modelKey: index.modelKey,
          tenantId: tenant,
          principal: 'alice',
          vector: vector(3),
          topK: 5,
        });
        searches.push({ start, end: Date.now(), ok: true, hits: hits.length });
      } catch (error) {
        searches.push({ start, end: Date.now(), ok: false, hits: 0, error: String(error) });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const writer = (async () => {
    let v = 3;
    while (busy) {
      const start = Date.now();
      await write(docs(0, 20, v++));
      writes.push({ start, end: Date.now() });
    }
  })();
  const watcher = (async () => {
    while (busy) {
      const res = await sinkDb.query<{ pid: number; application_name: string }>(
        `SELECT pid, application_name FROM pg_stat_activity WHERE query ILIKE 'REINDEX%' AND state = 'active'`,
      );
      reindexSeen.push(...res.rows);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const ran: Awaited<ReturnType<MaintenanceWorker['runNext']>>[] = [];
  try {
    await new Promise((r) => setTimeout(r, 200));
    for (let job = await worker.runNext(); job; job = await worker.runNext()) ran.push(job);
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    busy = false;
    await Promise.all([poller, writer, watcher]);
  }
  const reindex = ran.find((j) => j?.kind === 'reindex');
  assert.ok(reindex, 'the reindex ran');
  assert.equal(reindex.state, 'done', reindex.error ?? '');
  assert.equal(reindex.application_name, MAINTENANCE_APPLICATION_NAME, 'run on the maintenance connection');
  assert.ok(
    reindexSeen.every((r) => r.application_name === MAINTENANCE_APPLICATION_NAME && r.pid === reindex.backend_pid),
    `REINDEX only ever ran on the maintenance backend: ${JSON.stringify(reindexSeen.slice(0, 3))}`,
  );

  // Search answered throughout, also while the index was rebuilt; writes went on too.
  const from = reindex.started_at!.getTime();
  const to = reindex.finished_at!.getTime();
  const failed = searches.filter((s) => !s.ok || s.hits !== 5);
  assert.deepEqual(failed, [], 'every search answered with 5 hits');
  const during = searches.filter((s) => s.end >= from && s.start <= to);
  assert.ok(during.length > 0, `searches ran during the reindex (${to - from} ms, ${searches.length} searches)`);
  assert.ok(
    writes.some((w) => w.end >= from && w.start <= to),
    `writes went on during the reindex (${writes.length} batches)`,
  );

  // The index is valid and no half-built copy is left.
  const indexes = await sinkDb.query<{ name: string; valid: boolean }>(
    `SELECT i.relname AS name, x.indisvalid AS valid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
      WHERE x.indrelid = $1::regclass`,
    [chunkTableNames(index.modelKey).qualified],
  );
  assert.ok(
    indexes.rows.every((r) => r.valid && !r.name.includes('ccnew')),
    JSON.stringify(indexes.rows),
  );

  // The counter reset: the baseline is the count at the start of the build.
  const stored = await stats();
  assert.ok(stored);
  assert.equal(stored.last_index_build_at?.getTime(), from);
  assert.ok(Number(stored.changes_at_build) >= over.changesTotal, 'baseline at or after the sample that queued it');
  const settled = await waitFor(
    async () => {
      const [s] = await worker.sample();
      const expectedAtLeast = Number(stored.changes_at_build);
      return s && s.changesTotal >= expectedAtLeast ? s : undefined;
    },
    { timeoutMs: 30_000 },
  );
  assert.ok(
    settled.rowsChangedSinceBuild < THRESHOLD,
    `rows changed since the build reset: ${settled.rowsChangedSinceBuild}`,
  );
  assert.equal(settled.rowsChangedSinceBuild, settled.changesTotal - Number(stored.changes_at_build));
  assert.ok(!(await worker.queue([settled])).some((j) => j.kind === 'reindex'), 'no reindex queued after the reset');
  const after = await collectStatus(config);
  assert.equal(after.maintenance.running, 0);
  assert.ok(after.maintenance.last_done_at !== null);
  console.log(
    `reindex of ${over.liveRows} rows took ${to - from} ms; ${during.length} searches and ` +
      `${writes.filter((w) => w.end >= from && w.start <= to).length} write batches overlapped it (shared 2-core machine: noisy)`,
  );
});
