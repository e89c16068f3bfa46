/**
 * The reconciler on the real stack: the pipeline runs in this process for a tenant of its own; drift
 * is injected straight into the pgvector sink database (and the state topic), then found by a dry
 * run exactly as injected, repaired through the normal lanes, and gone on the next pass.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { metrics } from '../services/adapters/telemetry/metrics.ts';
import {
  createReconcilerService,
  reconcile,
  reconcilerDeps,
  type ReconcileReport,
  type ReconcilerDeps,
} from '../services/pipeline/reconciler/index.ts';
import { chunkTableName } from '../services/adapters/sinks/pgvector/naming.ts';
import { emptyCounts, hasDrift } from '../services/domain/transforms/drift.ts';
import { uniqueId } from './support/ids.ts';
import {
  dump,
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  type TestPipeline,
} from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

function body(sentences: number, seed: number): string {
  return Array.from(
    { length: sentences },
    (_, i) => `Sentence ${seed}-${i} about replication, failover and the vacuum of cluster ${seed}.`,
  ).join(' ');
}

describe('reconciler', () => {
  let p: TestPipeline;
  let sinkDb: pg.Pool;
  let deps: ReconcilerDeps;
  let table: string;
  const tenant = `tenant_${uniqueId('reconcile')}`;
  const key = (document: string) => `${tenant}:${document}`;
  const pass = (repair = false) => reconcile(deps, { tenants: [tenant], settleMs: 0, repair });
  /** Waits for a pass with no drift at all (the pipeline may still be applying what a test caused). */
  const waitClean = (timeoutMs = 60_000) =>
    waitFor(
      async () => {
        const report = await pass();
        const t = report.state_topic;
        return !hasDrift(report.drift) && t.missing + t.extra + t.stale === 0 && report.pending === 0
          ? report
          : undefined;
      },
      { timeoutMs, intervalMs: 500, description: `zero drift for ${tenant}` },
    );
  const sinkState = async () => {
    const chunks = await dump(p, tenant);
    const ledger = await p.source.query(
      `SELECT document_id, version, acl_version, acl, chunk_count, tombstone FROM vecsync.sync_state
        WHERE sink_name = $1 AND tenant_id = $2 ORDER BY document_id, model_key`,
      [p.config.sink.name, tenant],
    );
    const outbox = await p.source.query(
      `SELECT count(*)::int AS n FROM vecsync.vector_sync_outbox WHERE tenant_id = $1`,
      [tenant],
    );
    return { chunks, ledger: ledger.rows, outbox: outbox.rows[0] };
  };

  before(async () => {
    p = await startPipeline('reconcile');
    sinkDb = new pg.Pool({ connectionString: p.config.sink.pgvector.url, max: 2 });
    deps = await reconcilerDeps(p.rt, p.sink);
    table = `vecsync_sink.${chunkTableName(p.rt.activeIndex.modelKey)}`;
  });
  after(async () => {
    await sinkDb?.end();
    await p?.stop();
  });

  test('a clean pipeline reports zero drift, every bucket equal on every side', async () => {
    const docs = ['missing', 'stale', 'acl', 'orphans', 'clean-1', 'clean-2', 'ghost'].map((id, i) => ({
      tenant,
      id,
      body: body(12 + i * 4, i),
      acl: ['group:eng', `user:${id}`],
    }));
    const versions = await insertDocuments(p.source, docs);
    for (const d of docs) await waitForVersion(p, tenant, d.id, versions.get(d.id)!);
    const archived = await updateDocument(p.source, tenant, 'ghost', `status = 'archived'`);
    await waitForVersion(p, tenant, 'ghost', archived);

    const report = await waitClean();
    assert.deepEqual(report.drift, emptyCounts());
    assert.deepEqual(report.tenants, { [tenant]: emptyCounts() });
    assert.deepEqual(report.counts[tenant], { source: 6, state_topic: 6, sink: 6 });
    assert.equal(report.stats.source_documents, 6);
    assert.equal(report.stats.sink_documents, 6);
    assert.equal(report.stats.state_keys, 7);
    // The SQL-side and JS-side checksums agree, so nothing needed a closer look.
    assert.equal(report.stats.differing_buckets, 0);
    assert.equal(report.stats.detail_documents, 0);
  });

  test('a dry run reports exactly the injected drift, the repair fixes it, the next pass finds none', async () => {
    const chunkCount = async (document: string) =>
      (await dump(p, tenant, document)).filter((c) => c.document_id === document).length;
    const orphansFrom = await chunkCount('orphans');
    assert.ok(orphansFrom >= 1);
    const copyChunks = (from: string, to: string, indexOffset = 0, where = '') =>
      sinkDb.query(
        `INSERT INTO ${table} (sink_name, id, tenant_id, document_id, chunk_index, document_version, content_hash,
                               model_key, title, metadata, content, embedding)
         SELECT sink_name, tenant_id || ':' || $4 || '#' || (chunk_index + $5), tenant_id, $4, chunk_index + $5,
                document_version, content_hash, model_key, title, metadata, content, embedding
           FROM ${table} WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3 ${where}`,
        [p.config.sink.name, tenant, from, to, indexOffset],
      );
    // missing: the document's vectors are gone.
    await sinkDb.query(`DELETE FROM ${table} WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'missing'`, [
      p.config.sink.name,
      tenant,
    ]);
    // ghosts: vectors of the archived document, and of a document the source never had.
    await copyChunks('clean-1', 'ghost');
    await copyChunks('clean-2', 'never-existed');
    // acl_mismatch: the sink's ACL changed behind the pipeline's back (same ACL version).
    await sinkDb.query(
      `UPDATE vecsync_sink.document_acl SET acl = '{intruder}' WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'acl'`,
      [p.config.sink.name, tenant],
    );
    // stale: the sink holds an older version.
    await sinkDb.query(
      `UPDATE ${table} SET document_version = document_version - 1 WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'stale'`,
      [p.config.sink.name, tenant],
    );
    // orphan_chunks: two chunks past the chunk count.
    await copyChunks('orphans', 'orphans', orphansFrom, 'AND chunk_index < 2');
    const injectedOrphans = Math.min(2, orphansFrom);

    const before = await sinkState();
    const report = await pass();
    const expected = {
      missing: 1,
      ghost: 2,
      stale: 1,
      acl_mismatch: 1,
      orphan_chunks: injectedOrphans,
      // Two whole ghosts and one whole missing document: the sink counts one document more.
      count_mismatch: 1,
    };
    assert.deepEqual(report.drift, expected);
    assert.deepEqual(report.tenants, { [tenant]: expected });
    assert.deepEqual(
      Object.fromEntries(Object.entries(report.samples).map(([kind, keys]) => [kind, [...keys].sort()])),
      {
        missing: [key('missing')],
        ghost: [key('ghost'), key('never-existed')],
        stale: [key('stale')],
        acl_mismatch: [key('acl')],
        orphan_chunks: [key('orphans')],
        count_mismatch: [tenant],
      },
    );
    assert.deepEqual(report.counts[tenant], { source: 6, state_topic: 6, sink: 7 });
    assert.deepEqual(
      { missing: report.state_topic.missing, extra: report.state_topic.extra, stale: report.state_topic.stale },
      { missing: 0, extra: 0, stale: 0 },
    );
    assert.equal(report.mode, 'dry-run');
    assert.equal(report.repair, null);
    // The dry run changed nothing: sink, ledger and outbox are as they were.
    assert.deepEqual(await sinkState(), before);

    // The CLI prints the same report; --fail-on-drift turns drift into exit code 2.
    const env = {
      ...process.env,
      VECSYNC_EMBEDDER: p.config.embedder.type,
      VECSYNC_SINK_NAME: p.config.sink.name,
      VECSYNC_GROUP_PREFIX: p.config.groupPrefix,
      VECSYNC_LOG_LEVEL: 'warn',
    };
    const cli = ['bin/vecsync.mjs', 'reconcile', '--dry-run', '--json', '--tenant', tenant, '--settle-ms', '0'];
    const ok = await run(process.execPath, cli, { cwd: REPO, env });
    const printed = JSON.parse(ok.stdout) as ReconcileReport;
    assert.deepEqual(printed.drift, expected);
    assert.deepEqual(Object.keys(printed).slice(0, 3), ['drift', 'tenants', 'samples']);
    const failed = await run(process.execPath, [...cli, '--fail-on-drift'], { cwd: REPO, env }).then(
      () => assert.fail('expected exit code 2'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /^vecsync: drift found \(missing 1, ghost 2/);

    // Repair: the same findings, re-enqueued on the right lanes past the version guard.
    const lastOutbox = await p.source.query<{ id: string }>(
      'SELECT coalesce(max(id), 0) AS id FROM vecsync.vector_sync_outbox WHERE tenant_id = $1',
      [tenant],
    );
    const repaired = await pass(true);
    assert.deepEqual(repaired.drift, expected);
    assert.deepEqual(repaired.repair, {
      upserts: 3, // missing, stale, orphans
      deletes: 2, // the two ghosts
      acls: 1,
      states: 0,
      // missing, stale, orphans: content register; acl: ACL register; ghost: tombstone lifted.
      // never-existed has no ledger row to reset.
      ledger_resets: 5,
      skipped: 0,
    });
    const enqueued = await p.source.query<{
      document_id: string;
      operation: string;
      lane: string;
      document_version: string;
    }>(
      `SELECT document_id, operation, lane, document_version FROM vecsync.vector_sync_outbox
        WHERE tenant_id = $1 AND id > $2 ORDER BY document_id, operation`,
      [tenant, lastOutbox.rows[0]!.id],
    );
    assert.deepEqual(
      enqueued.rows.map((r) => `${r.document_id} ${r.operation} ${r.lane}`),
      [
        'acl acl priority',
        'ghost delete priority',
        'missing upsert bulk',
        'never-existed delete priority',
        'orphans upsert bulk',
        'stale upsert bulk',
      ],
    );

    const clean = await waitClean();
    assert.deepEqual(clean.drift, emptyCounts());
    assert.deepEqual(clean.counts[tenant], { source: 6, state_topic: 6, sink: 6 });
    // What the sink holds now, document by document.
    const chunks = await dump(p, tenant);
    assert.deepEqual([...new Set(chunks.map((c) => c.document_id))].sort(), [
      'acl',
      'clean-1',
      'clean-2',
      'missing',
      'orphans',
      'stale',
    ]);
    assert.ok(chunks.filter((c) => c.document_id === 'acl').every((c) => c.acl.join() === 'group:eng,user:acl'));
    assert.equal(await chunkCount('orphans'), orphansFrom);
    const ledger = await p.source.query<{ document_id: string; version: string; tombstone: boolean }>(
      `SELECT document_id, version, tombstone FROM vecsync.sync_state
        WHERE sink_name = $1 AND tenant_id = $2 AND model_key = $3 AND document_id IN ('ghost', 'never-existed')
        ORDER BY document_id`,
      // Other registered models (a re-embed in progress) have ledger rows of their own.
      [p.config.sink.name, tenant, p.rt.activeIndex.modelKey],
    );
    const archivedVersion = (
      await p.source.query<{ version: string }>(
        `SELECT version FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'ghost'`,
        [tenant],
      )
    ).rows[0]!.version;
    assert.deepEqual(
      ledger.rows.map((r) => [r.document_id, Number(r.version), r.tombstone]),
      [
        ['ghost', Number(archivedVersion), true],
        ['never-existed', 0, true],
      ],
    );
  });

  test('a state topic that disagrees with the source is reported, repaired, and the gauges follow', async () => {
    // A key the source never had, published straight to the state topic as searchable.
    await p.rt.producer.send(p.rt.topics.state, [
      {
        key: key('phantom'),
        value: JSON.stringify({
          tenant_id: tenant,
          document_id: 'phantom',
          version: 3,
          acl_version: 2,
          status: 'active',
          acl: ['group:eng'],
          content_hash: null,
          deleted: false,
          updated_at: new Date().toISOString(),
        }),
      },
    ]);
    const service = await createReconcilerService(p.rt, {
      intervalMs: 3_600_000,
      pass: { tenants: [tenant], settleMs: 0, repair: false },
    });
    const report = await service.runOnce();
    assert.deepEqual(report.drift, { ...emptyCounts(), count_mismatch: 1 });
    assert.deepEqual(
      { missing: report.state_topic.missing, extra: report.state_topic.extra, stale: report.state_topic.stale },
      { missing: 0, extra: 1, stale: 0 },
    );
    assert.deepEqual(report.state_topic.samples.extra, [key('phantom')]);
    assert.deepEqual(report.samples.count_mismatch, [tenant]);
    assert.deepEqual(report.counts[tenant], { source: 6, state_topic: 7, sink: 6 });

    const gauge = (await metrics.driftDocuments.get()).values.filter((v) => v.labels.tenant === tenant);
    assert.equal(gauge.length, 6);
    assert.equal(gauge.find((v) => v.labels.kind === 'count_mismatch')?.value, 1);
    assert.equal(gauge.find((v) => v.labels.kind === 'ghost')?.value, 0);
    const lastSuccess = (await metrics.reconcileLastSuccess.get()).values[0]?.value ?? 0;
    assert.ok(Math.abs(lastSuccess - Date.now() / 1000) < 60);
    await service.stop();

    const repaired = await pass(true);
    assert.equal(repaired.repair?.states, 1);
    const clean = await waitClean();
    assert.deepEqual(clean.counts[tenant], { source: 6, state_topic: 6, sink: 6 });
  });
});
