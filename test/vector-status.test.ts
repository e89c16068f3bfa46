/**
 * `vecsync.vector_status` (issue 14, item 3) against the shared stack, per sink, model and tenant:
 *
 * - freshness through the real pipeline (SQL into the triggers, Debezium, embedder, writer):
 *   last applied, then with the pipeline stopped, the oldest unapplied event and its age;
 * - drift % from the last reconcile pass (`vecsync reconcile`, which records it);
 * - index figures before and after a reindex, on a chunk table of its own (a unique model key)
 *   written through the sink and the ledger adapters the writer uses.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { Ledger } from '../services/adapters/postgres/ledger.ts';
import { createSink } from '../services/adapters/sinks/index.ts';
import type { DocumentWrite, IndexSpec, Sink } from '../services/adapters/sinks/types.ts';
import { chunkTableNames } from '../services/adapters/sinks/pgvector/naming.ts';
import { MaintenanceWorker } from '../services/ops/maintenance/index.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import { loadConfig, type Config } from '../services/config/index.ts';
import { insertDocuments, startPipeline, testSinkName, updateDocument, waitForVersion } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { uniqueId } from './support/ids.ts';
import { waitFor } from './support/wait.ts';
import { ensureVectorStatusSchema } from './support/vector-status-schema.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/vecsync.mjs');
const tenant = `tenant_${uniqueId('vstatus')}`;

interface StatusRow {
  documents: string;
  last_applied_at: Date | null;
  oldest_unapplied_at: Date | null;
  oldest_unapplied_age_seconds: number;
  unapplied_events: string;
  last_analyze_at: Date | null;
  last_index_build_at: Date | null;
  index_rows_changed_since_build: string | null;
  documents_changed_since_build: string;
  maintenance_queued: string;
  maintenance_running: string;
  last_reconcile_at: Date | null;
  drift_documents: string | null;
  drift_pct: string | null;
  model_state: string | null;
}

let config: Config;
let source: pg.Pool;
let sinkDb: pg.Pool;

async function row(modelKey: string): Promise<StatusRow | undefined> {
  return (
    await source.query<StatusRow>(
      'SELECT * FROM vecsync.vector_status WHERE sink_name = $1 AND model_key = $2 AND tenant_id = $3',
      [config.sink.name, modelKey, tenant],
    )
  ).rows[0];
}

let pipelineModel: string;

before(async () => {
  config = loadConfig({ ...process.env, VECSYNC_SINK_NAME: testSinkName(), VECSYNC_LOG_LEVEL: 'warn' });
  await ensureStack();
  await ensureVectorStatusSchema(config.sourceUrl);
  source = new pg.Pool({ connectionString: config.sourceUrl, max: 4 });
  sinkDb = new pg.Pool({ connectionString: config.sink.pgvector.url, max: 2 });
});

/** Three documents through the real pipeline of this test's sink, which is then stopped. */
async function throughPipeline(): Promise<void> {
  const p = await startPipeline('vstatus', { env: { VECSYNC_SINK_NAME: config.sink.name } });
  pipelineModel = p.rt.activeIndex.modelKey;
  try {
    const docs = ['d1', 'd2', 'd3'].map((id) => ({ tenant, id, body: `body of ${id}`, acl: ['alice'] }));
    const versions = await insertDocuments(p.source, docs);
    for (const d of docs) await waitForVersion(p, tenant, d.id, versions.get(d.id)!);
  } finally {
    await p.stop();
  }
}

after(async () => {
  await source?.query('DELETE FROM vecsync.sync_state WHERE sink_name = $1', [config.sink.name]);
  await source?.query('DELETE FROM vecsync.reconcile_results WHERE sink_name = $1', [config.sink.name]);
  await source?.query('DELETE FROM vecsync.maintenance_jobs WHERE sink_name = $1', [config.sink.name]);
  await source?.query('DELETE FROM vecsync.sink_index_stats WHERE sink_name = $1', [config.sink.name]);
  await sinkDb?.query('DELETE FROM vecsync_sink.document_acl WHERE sink_name = $1', [config.sink.name]);
  await source?.end();
  await sinkDb?.end();
});

test('freshness: last applied from the ledger, then the oldest unapplied event while the pipeline is down', async () => {
  await throughPipeline();
  const applied = await row(pipelineModel);
  assert.ok(applied, 'a row for the sink, model and tenant');
  const ledger = (
    await source.query<{ last: Date }>(
      'SELECT max(applied_at) AS last FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2',
      [config.sink.name, tenant],
    )
  ).rows[0]!;
  assert.equal(applied.documents, '3');
  assert.equal(applied.last_applied_at?.getTime(), ledger.last.getTime());
  assert.equal(applied.unapplied_events, '0');
  assert.equal(applied.oldest_unapplied_at, null);
  assert.equal(applied.oldest_unapplied_age_seconds, 0);
  assert.equal(applied.model_state, 'active');

  // The pipeline of this sink is stopped: a new document (its ACL grant and its content) and an
  // update stay unapplied for it.
  const mark = (await source.query<{ id: string }>('SELECT coalesce(max(id), 0) AS id FROM vecsync.vector_sync_outbox'))
    .rows[0]!.id;
  await insertDocuments(source, [{ tenant, id: 'd4', body: 'body of d4', acl: ['alice'] }]);
  await updateDocument(source, tenant, 'd1', "body = 'changed body of d1'");
  const outbox = (
    await source.query<{ first: Date; n: string }>(
      `SELECT min(created_at) AS first, count(*) AS n FROM vecsync.vector_sync_outbox
        WHERE id > $1 AND tenant_id = $2 AND (operation <> 'upsert' OR embedding_model || '.v' || embedding_version = $3)`,
      [mark, tenant, pipelineModel],
    )
  ).rows[0]!;
  assert.ok(Number(outbox.n) >= 2, `at least two events: ${outbox.n}`);
  await new Promise((r) => setTimeout(r, 1500));
  const lagging = await row(pipelineModel);
  assert.ok(lagging);
  assert.equal(lagging.unapplied_events, outbox.n);
  assert.equal(lagging.oldest_unapplied_at?.getTime(), outbox.first.getTime());
  const age = (Date.now() - outbox.first.getTime()) / 1000;
  assert.ok(
    Math.abs(lagging.oldest_unapplied_age_seconds - age) < 2,
    `age ${lagging.oldest_unapplied_age_seconds} s ≈ ${age} s`,
  );
  assert.ok(lagging.oldest_unapplied_age_seconds >= 1.4);
  assert.equal(lagging.last_applied_at?.getTime(), ledger.last.getTime(), 'last applied did not move');
});

// Uses the documents of the test above (d4 missing from the sink, d1 stale).
test('drift % is the last reconcile pass of the tenant', async () => {
  assert.ok(pipelineModel, 'needs the freshness test first');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [BIN, 'reconcile', '--json', '--tenant', tenant, '--settle-ms', '0'],
    { env: { ...process.env, VECSYNC_SINK_NAME: config.sink.name, VECSYNC_LOG_LEVEL: 'warn' } },
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const report = JSON.parse(stdout) as {
    tenants: Record<string, Record<string, number>>;
    counts: Record<string, { source: number }>;
  };
  const drift = report.tenants[tenant]!;
  assert.equal(drift.missing, 1, 'd4 is not in the sink');
  assert.equal(drift.stale, 1, 'd1 is at its old version');
  const documents = drift.missing! + drift.ghost! + drift.stale! + drift.acl_mismatch!;
  const expected = (100 * documents) / report.counts[tenant]!.source;
  const r = await row(pipelineModel);
  assert.ok(r?.last_reconcile_at);
  assert.equal(Number(r.drift_documents), 2);
  assert.equal(Number(r.drift_pct), Math.round(expected * 1000) / 1000);
  assert.equal(Number(r.drift_pct), 50);
});

test('index figures before and after a reindex', async () => {
  const index: IndexSpec = { modelKey: `${uniqueId('vs').replace(/_/g, '-')}.v1`, dimensions: 8 };
  const sink: Sink = await createSink(config);
  const ledger = new Ledger(source, config.sink.name);
  const worker = new MaintenanceWorker({
    source,
    sinkUrl: config.sink.pgvector.url,
    sinkName: config.sink.name,
    thresholds: { reindexRows: 40, analyzeRows: 40 },
    log: createLogger('warn'),
    models: async () => [index.modelKey],
  });
  /** Writes documents to the sink and records them in the ledger, as the writer does. */
  const write = async (ids: number[], version: number) => {
    const writes: DocumentWrite[] = ids.map((n) => ({
      tenantId: tenant,
      documentId: `x${n}`,
      documentVersion: version,
      chunkCount: 1,
      contentHash: `h${n}.${version}`,
      title: '',
      metadata: {},
      chunks: [
        {
          index: 0,
          content: `x${n} v${version}`,
          contentHash: `c${n}.${version}`,
          embedding: Float32Array.from({ length: 8 }, (_, i) => Math.sin(n + i + version)),
        },
      ],
      acl: { principals: ['alice'], aclVersion: 1 },
    }));
    assert.ok((await sink.writeDocuments(index, writes)).every((r) => r.ok));
    const keys = ids.map((n) => ({ tenantId: tenant, documentId: `x${n}`, modelKey: index.modelKey }));
    await ledger.withLocked(keys, (_rows, tx) =>
      tx.record(
        keys.map((k) => ({
          ...k,
          version,
          acl_version: 1,
          acl: ['alice'],
          tombstone: false,
          chunkCount: 1,
          contentHash: 'h',
        })),
        [],
      ),
    );
  };
  try {
    await sink.ensureIndex(index);
    await write(
      Array.from({ length: 50 }, (_, i) => i),
      1,
    );
    // Before any build by the maintenance loop: every change since the table exists counts.
    const first = await waitFor(
      async () => {
        const [s] = await worker.sample();
        return s && s.changesTotal >= 50 ? s : undefined;
      },
      { timeoutMs: 30_000, description: 'pg_stat to count 50 inserts' },
    );
    let r = await row(index.modelKey);
    assert.ok(r);
    assert.equal(r.index_rows_changed_since_build, String(first.changesTotal));
    assert.equal(first.changesTotal, 50);
    assert.equal(r.last_index_build_at, null);
    assert.equal(r.documents_changed_since_build, '50');
    assert.equal(r.last_analyze_at?.getTime() ?? null, first.lastAnalyzeAt?.getTime() ?? null);
    assert.equal(r.documents, '50');

    const queued = await worker.queue([first]);
    assert.deepEqual(queued.map((j) => j.kind).sort(), ['analyze', 'reindex']);
    r = await row(index.modelKey);
    assert.equal(r?.maintenance_queued, '2', 'the backlog is visible in vector_status');
    const status = await collectStatus(config);
    assert.equal(status.maintenance.queued, 2, 'and in vecsync status');
    assert.equal(status.vector_status.find((v) => v.model_key === index.modelKey)?.maintenance_queued, 2);

    const ran = [];
    for (let job = await worker.runNext(); job; job = await worker.runNext()) ran.push(job);
    assert.ok(
      ran.every((j) => j.state === 'done'),
      JSON.stringify(ran),
    );
    const reindex = ran.find((j) => j.kind === 'reindex')!;
    const analyze = ran.find((j) => j.kind === 'analyze')!;
    // After the build: counters at zero, build time = the reindex's start.
    const rebuilt = await waitFor(
      async () => {
        const [s] = await worker.sample();
        return s?.lastAnalyzeAt ? s : undefined;
      },
      { timeoutMs: 30_000, description: 'the ANALYZE to be reported' },
    );
    r = await row(index.modelKey);
    assert.ok(r);
    assert.equal(r.last_index_build_at?.getTime(), reindex.started_at!.getTime());
    assert.equal(r.index_rows_changed_since_build, '0');
    assert.equal(rebuilt.rowsChangedSinceBuild, 0);
    assert.equal(r.documents_changed_since_build, '0');
    assert.equal(r.maintenance_queued, '0');
    assert.equal(r.maintenance_running, '0');
    assert.ok(r.last_analyze_at && r.last_analyze_at.getTime() >= analyze.started_at!.getTime() - 1000);

    // Five documents change after the build: both counters say five.
    await write([1, 2, 3, 4, 5], 2);
    await waitFor(
      async () => {
        const [s] = await worker.sample();
        return s && s.rowsChangedSinceBuild >= 5 ? s : undefined;
      },
      { timeoutMs: 30_000, description: 'pg_stat to count 5 updates' },
    );
    r = await row(index.modelKey);
    assert.equal(r?.index_rows_changed_since_build, '5');
    assert.equal(r?.documents_changed_since_build, '5');
  } finally {
    await worker.close();
    await sink.close();
    await sinkDb.query(`DROP TABLE IF EXISTS ${chunkTableNames(index.modelKey).qualified}`);
  }
});
