/**
 * `vecsync backfill`: the cursor and the enqueue commit together, so a runner killed with SIGKILL
 * resumes without redoing or skipping a document; pause/resume from another process; pacing at the
 * planned rate; importance order; the metrics; and a replayed backfill leaves the sink unchanged.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { createEmbedder, type Embedder } from '../services/adapters/embedding/index.ts';
import { createEmbedderService } from '../services/pipeline/embedder/index.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import { kafkaClient, withAdmin } from './support/kafka.ts';
import { uniqueId } from './support/ids.ts';
import { ensureStack } from './support/stack.ts';
import { groupAtEnd, insertDocuments, type TestPipeline } from './support/pipeline.ts';
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

// Kafka's default partitioner (Debezium's producer and kafkajs agree): murmur2 of the key.
const murmur2 = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2') as (
  key: string,
) => number;

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

describe('importance: an important update overtakes a busy live lane', () => {
  const shared = sharedNames('important');
  const name = testModelName('important');
  let pool: pg.Pool;
  let p: TestPipeline | undefined;
  let embedderService: Service | undefined;

  before(async () => {
    await ensureStack();
    pool = new pg.Pool({ connectionString: loadConfig().sourceUrl, max: 3 });
  });
  after(async () => {
    await embedderService?.stop();
    await p?.stop();
    await dropTestModels(pool, [name], [shared.sinkName]).catch(() => undefined);
    await pool?.end();
  });

  test('its chunks are embedded and applied before the live backlog ahead of it in its partition', async () => {
    const model = await registerTestModel(pool, name, 1, 32);
    p = await startModelPipeline('important', shared, model, ['writer']);
    const rt = p.rt;
    const tenant = `tenant_${uniqueId('imp')}`;
    // Every document of the test on ONE partition of the live lane: without importance the
    // important update, enqueued last, would be embedded last.
    const partitions = (await withAdmin(p.config.kafkaBrokers, (a) => a.fetchTopicOffsets(rt.topics.lane('live'))))
      .length;
    const partitionOf = (doc: string) => (murmur2(`${tenant}:${doc}`) & 0x7fffffff) % partitions;
    const ids: string[] = [];
    for (let i = 0; ids.length < 81; i++) if (partitionOf(`d${i}`) === 0) ids.push(`d${i}`);
    const [importantId, ...ordinary] = ids as [string, ...string[]];
    const highBefore = Number(
      (await withAdmin(p.config.kafkaBrokers, (a) => a.fetchTopicOffsets(rt.topics.lane('live')))).find(
        (o) => o.partition === 0,
      )!.high,
    );
    for (const lane of ['live', 'bulk'] as const) {
      await groupAtEnd(p.config, `${rt.groupId('embedder')}.${lane}`, [rt.topics.lane(lane)]);
    }
    await insertDocuments(
      pool,
      ordinary.map((id) => ({ tenant, id, body: `Ordinary live document ${id} of ${tenant}.`, acl: ['g'] })),
    );
    await insertDocuments(pool, [
      { tenant, id: importantId, body: 'Urgent correction.', acl: ['g'], metadata: { importance: 9 } },
    ]);
    // The backlog is in the topic before the embedder starts (a busy lane, the important one
    // last): peek at partition 0 from where the test began until the important update is there.
    const peek = kafkaClient(p.config.kafkaBrokers).consumer({ groupId: `vecsync-test.${uniqueId('peek')}` });
    let captured = false;
    try {
      await peek.connect();
      await peek.subscribe({ topic: rt.topics.lane('live') });
      await peek.run({
        eachMessage: async ({ partition, message }) => {
          if (partition === 0 && message.key?.toString() === `${tenant}:${importantId}`) captured = true;
        },
      });
      peek.seek({ topic: rt.topics.lane('live'), partition: 0, offset: String(highBefore) });
      await waitFor(() => captured, { timeoutMs: 60_000, description: 'live backlog captured' });
    } finally {
      await peek.disconnect();
    }
    const embedded: string[] = [];
    const hashing = createEmbedder({ ...p.config.embedder, retry: p.config.retry });
    const slow: Embedder = {
      ...hashing,
      embed: async (texts, signal) => {
        embedded.push(...texts);
        await new Promise((r) => setTimeout(r, 15 * texts.length));
        return hashing.embed(texts, signal);
      },
    };
    // One slice holds the whole backlog of the partition (the shared topic carries other tests'
    // events too); across slices of one partition the runner keeps Kafka order.
    embedderService = await createEmbedderService(rt, { embedder: slow, maxBatch: 5000 });
    await embedderService.start();
    await waitFor(async () => (await syncedCount(pool, shared.sinkName, tenant, model.key)) === ids.length, {
      timeoutMs: 120_000,
      description: 'all applied',
    });
    // The embedder took the important update before every ordinary document ahead of it.
    const mine = embedded.filter((t) => t.includes(tenant) || t === 'Urgent correction.');
    const position = mine.indexOf('Urgent correction.');
    assert.equal(mine.length, ids.length);
    assert.equal(
      position,
      0,
      `the important update was embedded after ${position} of ${ordinary.length} ordinary ones`,
    );
  });
});
