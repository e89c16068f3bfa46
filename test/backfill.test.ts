/**
 * `vecsync backfill`: the cursor and the enqueue commit together, so a runner killed with SIGKILL
 * resumes without redoing or skipping a document; pause/resume from another process; pacing at the
 * planned rate; importance order; the metrics; and a replayed backfill leaves the sink unchanged.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { uniqueId } from './support/ids.ts';
import { ensureStack } from './support/stack.ts';
import { insertDocuments, type TestPipeline } from './support/pipeline.ts';
import {
  dropTestModels,
  modelEnv,
  registerTestModel,
  sharedNames,
  startModelPipeline,
  syncedCount,
  testModelName,
  vecsync,
  vecsyncBackground,
  type TestModel,
} from './support/lifecycle.ts';
import { waitFor } from './support/wait.ts';

interface StatusRow {
  id: number;
  model: string;
  tenant: string | null;
  state: string;
  done: number;
  total: number;
  rate: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

describe('vecsync backfill', () => {
  const shared = sharedNames('backfill');
  const name = testModelName('backfill');
  let pool: pg.Pool;
  let model: TestModel;
  let env: Record<string, string>;

  const bulkRows = async (tenant: string) =>
    (
      await pool.query<{ document_id: string; id: string }>(
        `SELECT document_id, id FROM vecsync.vector_sync_outbox
          WHERE tenant_id = $1 AND lane = 'bulk' AND embedding_model = $2 AND embedding_version = $3 ORDER BY id`,
        [tenant, model.name, model.version],
      )
    ).rows;
  const status = async (id: number): Promise<StatusRow> => {
    const out = await vecsync(['backfill', 'status', String(id), '--json'], env);
    assert.equal(out.code, 0, out.stderr);
    return (JSON.parse(out.stdout) as { backfills: StatusRow[] }).backfills[0]!;
  };
  const dbState = async (id: number) =>
    (
      await pool.query<{ state: string; position: string; total: string }>(
        'SELECT state, position, total FROM vecsync.backfills WHERE id = $1',
        [id],
      )
    ).rows[0]!;

  before(async () => {
    await ensureStack();
    pool = new pg.Pool({ connectionString: loadConfig().sourceUrl, max: 3 });
    model = await registerTestModel(pool, name, 1, 32);
    env = modelEnv(shared, model);
  });
  after(async () => {
    await dropTestModels(pool, [name], [shared.sinkName]).catch(() => undefined);
    await pool?.end();
  });

  test('SIGKILL mid-backfill, then resume: every document enqueued exactly once, important ones first', async () => {
    const tenant = `tenant_${uniqueId('bfkill')}`;
    const n = 80;
    await insertDocuments(
      pool,
      Array.from({ length: n }, (_, i) => ({
        tenant,
        id: `d${String(i).padStart(3, '0')}`,
        body: `Backfill ${i}.`,
        metadata: i % 10 === 7 ? { importance: 5 } : {},
      })),
    );
    const started = Date.now();
    const run = await vecsyncBackground(
      ['backfill', 'start', '--model', model.key, '--tenant', tenant, '--rate', '20'],
      env,
    );
    const id = Number(run.firstLine);
    assert.ok(Number.isInteger(id) && id > 0, `id printed: ${run.firstLine}`);
    await waitFor(async () => Number((await dbState(id)).position) >= 20, { description: 'backfill past 20' });
    run.child.kill('SIGKILL');
    await run.exited;
    const killed = await dbState(id);
    assert.equal(killed.state, 'running');
    assert.ok(Number(killed.position) < n, `killed before the end (${killed.position}/${n})`);
    // The cursor and the outbox rows committed together: exactly `position` documents enqueued.
    assert.equal((await bulkRows(tenant)).length, Number(killed.position));

    const resumed = await vecsync(['backfill', 'resume', String(id)], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    const elapsed = (Date.now() - started) / 1000;
    const rows = await bulkRows(tenant);
    assert.equal(rows.length, n, 'each document enqueued once over both runs');
    assert.equal(new Set(rows.map((r) => r.document_id)).size, n);
    // Importance order, then age: the 8 documents with importance 5 were planned first.
    assert.deepEqual(
      rows.slice(0, 8).map((r) => r.document_id),
      Array.from({ length: 8 }, (_, k) => `d${String(k * 10 + 7).padStart(3, '0')}`),
    );
    const s = await status(id);
    assert.deepEqual(
      { state: s.state, done: s.done, total: s.total, rate: s.rate, model: s.model, tenant: s.tenant },
      { state: 'done', done: n, total: n, rate: 20, model: model.key, tenant },
    );
    // Paced: 80 documents at 20/s take about 4 s (the kill and the restart add to it).
    assert.ok(elapsed >= 3, `paced at the planned rate (${elapsed.toFixed(1)} s)`);
  });

  test('pause from another process stops the runner; resume finishes; metrics carry the planned rate', async () => {
    const tenant = `tenant_${uniqueId('bfpause')}`;
    const n = 60;
    await insertDocuments(
      pool,
      Array.from({ length: n }, (_, i) => ({ tenant, id: `p${i}`, body: `Pause ${i}.` })),
    );
    const port = await freePort();
    const run = await vecsyncBackground(
      ['backfill', 'start', '--model', model.key, '--tenant', tenant, '--rate', '10', '--metrics-port', String(port)],
      env,
    );
    const id = Number(run.firstLine);
    await waitFor(async () => Number((await dbState(id)).position) >= 5, { description: 'backfill past 5' });
    const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const labels = `backfill="${id}",model="${model.key}"`;
    assert.match(scrape, new RegExp(`vecsync_backfill_planned_rate\\{${labels}\\} 10`));
    assert.match(scrape, new RegExp(`vecsync_backfill_documents_total\\{${labels}\\} \\d+`));
    assert.match(scrape, new RegExp(`vecsync_backfill_remaining_documents\\{${labels}\\} \\d+`));

    const paused = await vecsync(['backfill', 'pause', String(id)], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(await run.exited, 0, `the runner exits once it sees the pause: ${run.stderr()}`);
    const p = await status(id);
    assert.equal(p.state, 'paused');
    assert.ok(p.done < n);
    assert.equal((await bulkRows(tenant)).length, p.done);
    // Nothing moves while paused.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await bulkRows(tenant)).length, p.done);

    const resumed = await vecsync(['backfill', 'resume', String(id)], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((await status(id)).state, 'done');
    assert.equal((await bulkRows(tenant)).length, n);
  });

  test('a replayed backfill is a no-op in the sink (the ledger version guard)', async () => {
    const tenant = `tenant_${uniqueId('bfreplay')}`;
    const n = 25;
    let p: TestPipeline | undefined;
    try {
      p = await startModelPipeline('backfill', shared, model, ['embedder', 'writer']);
      await insertDocuments(
        pool,
        Array.from({ length: n }, (_, i) => ({ tenant, id: `r${i}`, body: `Replay ${i}.`, acl: ['g'] })),
      );
      await waitFor(async () => (await syncedCount(pool, shared.sinkName, tenant, model.key)) === n, {
        timeoutMs: 60_000,
        description: 'live sync',
      });
      const index = { modelKey: model.key, dimensions: model.dimensions };
      const before = await p.sink.inspect(index, tenant, undefined, { includeEmbeddings: true });
      const applied = await pool.query(
        'SELECT document_id, applied_at FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 ORDER BY 1',
        [shared.sinkName, tenant],
      );
      const seen = p.committed.writer.length;
      for (let round = 0; round < 2; round++) {
        const out = await vecsync(
          ['backfill', 'start', '--model', model.key, '--tenant', tenant, '--rate', '500'],
          env,
        );
        assert.equal(out.code, 0, out.stderr);
      }
      // The writer handles all 2n bulk records, and every one is a no-op.
      await waitFor(
        () => p!.committed.writer.slice(seen).filter((c) => c.message.key?.startsWith(`${tenant}:`)).length >= 2 * n,
        { timeoutMs: 60_000, description: 'writer consumed the replayed backfill' },
      );
      const outcomes = p.committed.writer.slice(seen).filter((c) => c.message.key?.startsWith(`${tenant}:`));
      assert.ok(
        outcomes.every((c) => c.outcome.kind === 'done' && c.outcome.result === 'skipped'),
        'every replayed record skipped',
      );
      assert.deepEqual(await p.sink.inspect(index, tenant, undefined, { includeEmbeddings: true }), before);
      const appliedAfter = await pool.query(
        'SELECT document_id, applied_at FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 ORDER BY 1',
        [shared.sinkName, tenant],
      );
      assert.deepEqual(appliedAfter.rows, applied.rows);
    } finally {
      await p?.stop();
    }
  });
});
