/**
 * Several models side by side: embedders and writers for two models under ONE group prefix and
 * ONE sink. Each model has its own consumer groups, chunk topic, index and ledger rows, and both
 * indexes end complete. (With groups that do not carry the model key, the two embedders split the
 * lane partitions and commit each other's events as skipped, and one index stays incomplete.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { uniqueId } from './support/ids.ts';
import { ensureStack } from './support/stack.ts';
import { insertDocuments, type TestPipeline } from './support/pipeline.ts';
import {
  dropTestModels,
  registerTestModel,
  sharedNames,
  startModelPipeline,
  syncedCount,
  testModelName,
  vecsync,
  modelEnv,
  type TestModel,
} from './support/lifecycle.ts';
import { waitFor } from './support/wait.ts';

describe('two models under one prefix', () => {
  const tenant = `tenant_${uniqueId('models')}`;
  const shared = sharedNames('models');
  const name = testModelName('models');
  let pool: pg.Pool;
  let a: TestModel;
  let b: TestModel;
  const pipelines: TestPipeline[] = [];

  before(async () => {
    await ensureStack();
    pool = new pg.Pool({ connectionString: loadConfig().sourceUrl, max: 2 });
    a = await registerTestModel(pool, name, 1, 64);
    b = await registerTestModel(pool, name, 2, 96);
    // Model a's deployment also runs the sink's propagator; model b's runs only its own services.
    pipelines.push(await startModelPipeline('models', shared, a, ['propagator', 'embedder', 'writer']));
    pipelines.push(await startModelPipeline('models', shared, b, ['embedder', 'writer']));
  });
  after(async () => {
    await Promise.allSettled(pipelines.map((p) => p.stop()));
    await dropTestModels(pool, [name], [shared.sinkName]).catch(() => undefined);
    await pool?.end();
  });

  test('each model has its own consumer groups and both indexes end complete', async () => {
    const [pa, pb] = pipelines as [TestPipeline, TestPipeline];
    assert.notEqual(pa.rt.groupId('embedder'), pb.rt.groupId('embedder'));
    assert.notEqual(pa.rt.groupId('writer'), pb.rt.groupId('writer'));
    assert.equal(pa.rt.groupId('propagator'), pb.rt.groupId('propagator'));

    const n = 40;
    await insertDocuments(
      pool,
      Array.from({ length: n }, (_, i) => ({ tenant, id: `d${i}`, body: `Side by side ${i} ${tenant}.`, acl: ['g'] })),
    );
    for (const m of [a, b]) {
      await waitFor(async () => (await syncedCount(pool, shared.sinkName, tenant, m.key)) === n, {
        timeoutMs: 180_000,
        description: `${n} documents of ${tenant} in ${m.key}`,
      });
    }
    const chunksA = await pa.sink.inspect({ modelKey: a.key, dimensions: a.dimensions }, tenant);
    const chunksB = await pb.sink.inspect({ modelKey: b.key, dimensions: b.dimensions }, tenant);
    assert.equal(new Set(chunksA.map((c) => c.document_id)).size, n);
    assert.equal(new Set(chunksB.map((c) => c.document_id)).size, n);
    // The model key is on every vector; the chunking version is the model's registration.
    assert.ok(chunksA.every((c) => c.model === a.key));
    assert.ok(chunksB.every((c) => c.model === b.key));

    // A delete reaches both indexes through the one propagator of the sink.
    await pool.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, 'd0']);
    await waitFor(
      async () =>
        (await pa.sink.inspect({ modelKey: a.key, dimensions: a.dimensions }, tenant, 'd0')).length === 0 &&
        (await pb.sink.inspect({ modelKey: b.key, dimensions: b.dimensions }, tenant, 'd0')).length === 0,
      { timeoutMs: 60_000, description: 'd0 deleted from both indexes' },
    );
  });

  test('models list shows both, exactly one serving', async () => {
    const out = await vecsync(['models', 'list', '--json'], modelEnv(shared, a));
    assert.equal(out.code, 0, out.stderr);
    const rows = (
      JSON.parse(out.stdout) as { model: string; serving: boolean; embedder: string; dimensions: number }[]
    ).filter((r) => r.model.startsWith(name));
    assert.deepEqual(
      rows.map((r) => [r.model, r.embedder, r.dimensions, r.serving]),
      [
        [a.key, 'hashing', 64, true],
        [b.key, 'hashing', 96, false],
      ],
    );
    const all = JSON.parse(out.stdout) as { serving: boolean }[];
    assert.equal(all.filter((r) => r.serving).length, 1);
  });
});
