/**
 * A blue/green re-embed end to end, on one pgvector sink: `reembed --to` registers the next model
 * (other dimensions, so the two indexes are told apart by search) and creates its index; its
 * backfill is SIGKILLed mid-way and resumed; deletes, revokes and edits made during the backfill
 * reach both indexes; the compare comes out clean with recall for both; cutover switches search,
 * rollback switches it back with both indexes kept, and retire drops the old index.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { hashingEmbed } from '../services/adapters/embedding/hashing/index.ts';
import { addGoldenQueries } from '../services/ops/reembed/recall.ts';
import { createPineconeSink } from '../services/adapters/sinks/pinecone/sink.ts';
import { parseIndexTargets } from '../services/adapters/sinks/pinecone/targets.ts';
import { startPineconeServer } from './support/pinecone-server.ts';
import { doc } from './sinks/conformance.ts';
import { uniqueId } from './support/ids.ts';
import { ensureStack } from './support/stack.ts';
import { insertDocuments, updateDocument, type TestPipeline } from './support/pipeline.ts';
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

describe('blue/green re-embed', () => {
  const tenant = `tenant_${uniqueId('reembed')}`;
  const shared = sharedNames('reembed');
  const nameA = testModelName('reold');
  const nameB = testModelName('renew');
  const n = 40;
  let pool: pg.Pool;
  let a: TestModel;
  const b: TestModel = { name: nameB, version: 1, dimensions: 48, key: `${nameB}.v1` };
  let env: Record<string, string>;
  const pipelines: TestPipeline[] = [];

  const cli = async (args: string[]) => {
    const out = await vecsync(args, env);
    assert.equal(out.code, 0, `vecsync ${args.join(' ')}: ${out.stderr}`);
    return out.stdout;
  };
  const searchCli = async (text: string) =>
    JSON.parse(await cli(['search', '--tenant', tenant, '--principal', 'g', '--top', '5', '--json', text])) as {
      document_id: string;
      chunk_index: number;
      score: number;
    }[];
  const searchDirect = async (m: TestModel, text: string) =>
    (
      await pipelines[0]!.sink.search({
        modelKey: m.key,
        tenantId: tenant,
        principal: 'g',
        vector: hashingEmbed(text, m.dimensions),
        topK: 5,
      })
    ).map((h) => ({ document_id: h.documentId, chunk_index: h.chunkIndex, score: h.score }));
  const docsIn = async (m: TestModel) =>
    new Set(
      (await pipelines[0]!.sink.inspect({ modelKey: m.key, dimensions: m.dimensions }, tenant)).map(
        (c) => c.document_id,
      ),
    );

  before(async () => {
    await ensureStack();
    pool = new pg.Pool({ connectionString: loadConfig().sourceUrl, max: 3 });
    a = await registerTestModel(pool, nameA, 1, 64);
    env = modelEnv(shared, a);
    pipelines.push(await startModelPipeline('reembed', shared, a, ['propagator', 'embedder', 'writer']));
  });
  after(async () => {
    await Promise.allSettled(pipelines.map((p) => p.stop()));
    await dropTestModels(pool, [nameA, nameB], [shared.sinkName]).catch(() => undefined);
    await pool?.query('DELETE FROM vecsync.golden_queries WHERE tenant_id = $1', [tenant]).catch(() => undefined);
    await pool?.end();
  });

  test('backfill killed and resumed, changes reach both, compare clean, cutover, rollback, retire', async () => {
    const topics = ['invoices', 'kubernetes', 'gardening', 'astronomy', 'cooking', 'football'];
    await insertDocuments(
      pool,
      Array.from({ length: n }, (_, i) => ({
        tenant,
        id: `d${i}`,
        title: `${topics[i % topics.length]} note ${i}`,
        body: `All about ${topics[i % topics.length]}: part ${i} of the ${tenant} corpus.`,
        acl: ['g', 'h'],
      })),
    );
    await addGoldenQueries(
      pool,
      [0, 1, 2, 3, 4, 5].map((i) => ({ tenant, query: `${topics[i]} note ${i}`, expected: `d${i}`, principal: 'g' })),
    );
    await waitFor(async () => (await syncedCount(pool, shared.sinkName, tenant, a.key)) === n, {
      timeoutMs: 180_000,
      description: 'old model synced',
    });

    // Register the next model and plan its backfill; start its deployment; then run the backfill.
    const started = JSON.parse(
      await cli([
        'reembed',
        '--to',
        'hashing',
        '--model',
        nameB,
        '--dimensions',
        '48',
        '--rate',
        '10',
        '--tenant',
        tenant,
        '--detach',
      ]),
    ) as { id: number; from: string; to: string; backfill: number };
    assert.equal(started.from, a.key);
    assert.equal(started.to, b.key);
    const listed = JSON.parse(await cli(['models', 'list', '--json'])) as {
      model: string;
      state: string;
      serving: boolean;
    }[];
    assert.deepEqual(
      listed
        .filter((m) => m.model === a.key || m.model === b.key)
        .map((m) => [m.model, m.state, m.serving])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
      [
        [a.key, 'active', true],
        [b.key, 'backfilling', false],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    pipelines.push(await startModelPipeline('reembed', shared, b, ['embedder', 'writer']));

    const run = await vecsyncBackground(['backfill', 'resume', String(started.backfill)], env, { waitForLine: false });
    await waitFor(
      async () =>
        Number(
          (
            await pool.query<{ position: string }>('SELECT position FROM vecsync.backfills WHERE id = $1', [
              started.backfill,
            ])
          ).rows[0]!.position,
        ) >= 12,
      { description: 'backfill past 12' },
    );
    run.child.kill('SIGKILL');
    await run.exited;
    // Changes while the re-embed is under way: a delete, a revoke, an edit.
    await pool.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, 'd30']);
    await pool.query('DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = $2 AND principal = $3', [
      tenant,
      'd31',
      'h',
    ]);
    const v32 = await updateDocument(pool, tenant, 'd32', 'body = $3', ['Edited during the re-embed.']);
    const status1 = JSON.parse(await cli(['reembed', 'status', '--json'])) as {
      state: string;
      done: number;
      total: number;
    };
    assert.equal(status1.state, 'backfilling');
    assert.ok(status1.done < status1.total);
    await cli(['backfill', 'resume', String(started.backfill)]);

    for (const m of [a, b]) {
      await waitFor(async () => (await syncedCount(pool, shared.sinkName, tenant, m.key)) === n - 1, {
        timeoutMs: 180_000,
        description: `${m.key} synced`,
      });
    }
    await waitFor(async () => !(await docsIn(a)).has('d30') && !(await docsIn(b)).has('d30'), {
      description: 'd30 gone from both indexes',
    });
    for (const m of [a, b]) {
      const chunks = await pipelines[0]!.sink.inspect({ modelKey: m.key, dimensions: m.dimensions }, tenant, 'd31');
      assert.ok(chunks.length > 0 && chunks.every((c) => !c.acl.includes('h')), `revoke reached ${m.key}`);
      const edited = await pipelines[0]!.sink.inspect({ modelKey: m.key, dimensions: m.dimensions }, tenant, 'd32');
      assert.ok(
        edited.every((c) => c.document_version === v32),
        `edit reached ${m.key}`,
      );
    }

    const status2 = JSON.parse(await cli(['reembed', 'status', '--json'])) as Record<string, unknown>;
    assert.deepEqual(
      { from: status2.from, to: status2.to, state: status2.state, done: status2.done, total: status2.total },
      { from: a.key, to: b.key, state: 'ready', done: n, total: n },
    );
    const compare = JSON.parse(await cli(['reembed', 'compare', '--json', '--tenant', tenant])) as {
      documents: { old: number; new: number; missing_in_new: number; extra_in_new: number };
      acl_mismatch: number;
      version_mismatch: number;
      topk_overlap: number;
      recall: { old: number; new: number; queries: number };
      clean: boolean;
    };
    assert.deepEqual(compare.documents, { old: n - 1, new: n - 1, missing_in_new: 0, extra_in_new: 0 });
    assert.equal(compare.acl_mismatch, 0);
    assert.equal(compare.version_mismatch, 0);
    assert.equal(compare.clean, true);
    assert.ok(compare.topk_overlap > 0.3, `top-k overlap ${compare.topk_overlap}`);
    assert.equal(compare.recall.queries, 6);
    assert.ok(compare.recall.old > 0.5 && compare.recall.new > 0.5, JSON.stringify(compare.recall));

    // Cutover: search reads the new index.
    const query = 'kubernetes note';
    assert.deepEqual(await searchCli(query), await searchDirect(a, query));
    // The readiness check compares the whole sink; other tests' documents share this database, so
    // the check is the tenant-scoped compare above, and the cutover is forced.
    await cli(['reembed', 'cutover', '--force']);
    assert.deepEqual(await searchCli(query), await searchDirect(b, query));
    const afterCutover = JSON.parse(await cli(['models', 'list', '--json'])) as { model: string; serving: boolean }[];
    assert.deepEqual(
      afterCutover.filter((m) => m.serving).map((m) => m.model),
      [b.key],
    );

    // Rollback: back to the old index; the new one is kept.
    await cli(['reembed', 'rollback']);
    assert.deepEqual(await searchCli(query), await searchDirect(a, query));
    assert.equal((await docsIn(b)).size, n - 1);
    assert.equal(JSON.parse(await cli(['reembed', 'status', '--json'])).state, 'rolled_back');

    // Cutover again, then retire: the old model stops receiving events and its index is dropped.
    await cli(['reembed', 'cutover', '--force']);
    const early = await vecsync(['reembed', 'retire'], env);
    assert.notEqual(early.code, 0, 'retire waits for the grace period');
    await cli(['reembed', 'retire', '--grace', '0']);
    // The old model's table is gone (this sink was its only user); a reader that had it cached fails.
    const leftover = await docsIn(a).catch((error: Error) => {
      assert.match(error.message, /does not exist/);
      return new Set<string>();
    });
    assert.equal(leftover.size, 0);
    const models = JSON.parse(await cli(['models', 'list', '--json'])) as {
      model: string;
      state: string;
      serving: boolean;
    }[];
    assert.deepEqual(
      models
        .filter((m) => m.model === a.key || m.model === b.key)
        .map((m) => [m.model, m.state, m.serving])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
      [
        [a.key, 'retired', false],
        [b.key, 'active', true],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    const ledgerA = await pool.query('SELECT 1 FROM vecsync.sync_state WHERE sink_name = $1 AND model_key = $2', [
      shared.sinkName,
      a.key,
    ]);
    assert.equal(ledgerA.rowCount, 0);
    assert.equal(JSON.parse(await cli(['reembed', 'status', '--json'])).state, 'retired');
    await pipelines[0]!.sink.dropIndex({ modelKey: b.key, dimensions: b.dimensions });
  });
});

describe('Pinecone (contract server): retire drops the old model index, the new one stays', () => {
  test('dropIndex empties every namespace of the old index in host mode', async () => {
    const oldServer = await startPineconeServer({ dimension: 8, visibilityDelayMs: 50 });
    const newServer = await startPineconeServer({ dimension: 8, visibilityDelayMs: 50 });
    const oldIndex = { modelKey: 'hashing-8.v1', dimensions: 8 };
    const newIndex = { modelKey: 'hashing-8.v2', dimensions: 8 };
    const sink = createPineconeSink(
      { sink: { name: 'main' } },
      {
        overrides: {
          apiKey: 'test',
          targets: parseIndexTargets({
            activeModelKey: oldIndex.modelKey,
            index: 'vecsync',
            host: `${oldServer.host},${newIndex.modelKey}=${newServer.host}`,
          }),
          retryInitialMs: 5,
          retryMaxMs: 200,
        },
      },
    );
    try {
      for (const index of [oldIndex, newIndex]) {
        await sink.ensureIndex(index);
        for (const tenant of ['t1', 't2']) {
          const results = await sink.writeDocuments(index, [doc(index, tenant, 'a'), doc(index, tenant, 'b')]);
          assert.ok(results.every((r) => r.ok));
        }
      }
      await waitFor(async () => (await sink.listTenants(oldIndex)).length === 2, { description: 'old index written' });
      await sink.dropIndex(oldIndex);
      await waitFor(async () => (await sink.listTenants(oldIndex)).length === 0, { description: 'old index empty' });
      await waitFor(async () => (await sink.listTenants(newIndex)).length === 2, { description: 'new index kept' });
      assert.equal((await sink.inspect(newIndex, 't1')).length, 6);
    } finally {
      await sink.close();
      await oldServer.close();
      await newServer.close();
    }
  });
});
