/**
 * A blue/green re-embed end to end, once on one pgvector sink and once on two sinks at once (a
 * pgvector sink and a Pinecone sink on the contract server, each with its own writer per model):
 * `reembed --to` registers the next model (other dimensions, so the two indexes are told apart by
 * search) and creates its index; a second sink's `reembed --to` joins that re-embed (same model,
 * same backfill); the backfill is SIGKILLed mid-way and resumed; deletes, revokes and edits made
 * during the backfill reach both indexes of every sink; the compare comes out clean with recall
 * for both models in every sink; cutover switches each sink's search, rollback switches it back
 * with both indexes kept, and retire drops the old model's index in every sink.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { hashingEmbed } from '../services/adapters/embedding/hashing/index.ts';
import { addGoldenQueries } from '../services/ops/reembed/recall.ts';
import { createPineconeSink } from '../services/adapters/sinks/pinecone/sink.ts';
import { parseIndexTargets } from '../services/adapters/sinks/pinecone/targets.ts';
import { startPineconeServer, type PineconeIndexServer } from './support/pinecone-server.ts';
import { doc } from './sinks/conformance.ts';
import { uniqueId } from './support/ids.ts';
import { ensureStack } from './support/stack.ts';
import { insertDocuments, startPipeline, updateDocument, type TestPipeline } from './support/pipeline.ts';
import {
  dropTestModels,
  modelEnv,
  registerTestModel,
  sharedNames,
  syncedCount,
  testModelName,
  vecsync,
  vecsyncBackground,
  type Shared,
  type TestModel,
} from './support/lifecycle.ts';
import { waitFor } from './support/wait.ts';

type SinkKind = 'pgvector' | 'pinecone';

/** One sink of the re-embed: its names, its backend settings and its pipelines (model A's, then B's). */
interface SinkUnderTest {
  kind: SinkKind;
  shared: Shared;
  /** Settings every process of this sink gets on top of the model's (Pinecone: backend, key, index hosts). */
  backend: Record<string, string>;
  /** Pinecone: the contract server of each model key. */
  servers: Map<string, PineconeIndexServer>;
  pipelines: TestPipeline[];
}

interface Reembed {
  tenant: string;
  n: number;
  pool: pg.Pool;
  a: TestModel;
  b: TestModel;
  sinks: SinkUnderTest[];
}

const envOf = (s: SinkUnderTest, m: TestModel) => ({ ...modelEnv(s.shared, m), ...s.backend });

async function startSinkPipeline(s: SinkUnderTest, m: TestModel, services: ('propagator' | 'embedder' | 'writer')[]) {
  s.pipelines.push(await startPipeline('reembed', { services, env: envOf(s, m) }));
}

/**
 * Registers model A and starts model A's pipeline (propagator, embedder, writer) of each sink;
 * model B is registered by the test's `reembed --to`. A Pinecone sink gets one contract server per
 * live model (host mode: its propagator writes deletes and ACL changes to every live model's index),
 * B's included.
 */
function setUpReembed(label: string, kinds: SinkKind[]): Reembed {
  const nameA = testModelName(`${label}old`);
  const nameB = testModelName(`${label}new`);
  const ctx: Reembed = {
    tenant: `tenant_${uniqueId(label)}`,
    n: 40,
    pool: undefined as unknown as pg.Pool,
    a: undefined as unknown as TestModel,
    b: { name: nameB, version: 1, dimensions: 48, key: modelKey(nameB, 1) },
    sinks: [],
  };
  before(
    async () => {
      await ensureStack();
      ctx.pool = new pg.Pool({ connectionString: loadConfig().sourceUrl, max: 3 });
      ctx.a = await registerTestModel(ctx.pool, nameA, 1, 64);
      const live = await ctx.pool.query<{ name: string; version: number; dimensions: number }>(
        `SELECT name, version, dimensions FROM vecsync.embedding_models WHERE state <> 'retired'`,
      );
      const dimensionsByKey = new Map(live.rows.map((m) => [modelKey(m.name, m.version), m.dimensions]));
      dimensionsByKey.set(ctx.b.key, ctx.b.dimensions);
      for (const kind of kinds) {
        const s: SinkUnderTest = { kind, shared: sharedNames(label), backend: {}, servers: new Map(), pipelines: [] };
        ctx.sinks.push(s);
        if (kind === 'pinecone') {
          for (const [key, dimension] of dimensionsByKey) {
            s.servers.set(key, await startPineconeServer({ dimension, visibilityDelayMs: 50 }));
          }
          const entries = [...s.servers.entries()];
          s.backend = {
            VECSYNC_SINK: 'pinecone',
            PINECONE_API_KEY: 'test',
            VECSYNC_PINECONE_HOST: entries.map(([key, server]) => `${key}=${server.host}`).join(','),
            // Test model keys are too long for the derived index names (at most 45 characters).
            VECSYNC_PINECONE_INDEX: ['vecsync', ...entries.map(([key], i) => `${key}=vecsync-${i}`)].join(','),
          };
        }
      }
      // One after the other: embedders of one model starting together race on registering its
      // chunk schema's compatibility in the registry (409 "rule already exists").
      for (const s of ctx.sinks) await startSinkPipeline(s, ctx.a, ['propagator', 'embedder', 'writer']);
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await Promise.allSettled(ctx.sinks.flatMap((s) => s.pipelines.map((p) => p.stop())));
    await dropTestModels(
      ctx.pool,
      [nameA, nameB],
      ctx.sinks.map((s) => s.shared.sinkName),
    ).catch(() => undefined);
    await ctx.pool
      ?.query('DELETE FROM vecsync.golden_queries WHERE tenant_id = $1', [ctx.tenant])
      .catch(() => undefined);
    await ctx.pool?.end();
    await Promise.allSettled(ctx.sinks.flatMap((s) => [...s.servers.values()].map((server) => server.close())));
  });
  return ctx;
}

interface ModelRow {
  model: string;
  state: string;
  serving: boolean;
}

/**
 * The whole re-embed, every step on every sink (each sink's CLI runs with that sink's settings).
 * The backfill is one: the first sink's `reembed --to` plans it, the others join it.
 */
async function reembedFlow(ctx: Reembed): Promise<void> {
  const { tenant, n, pool, a, b, sinks } = ctx;
  const run = (s: SinkUnderTest, args: string[]) => vecsync(args, envOf(s, a));
  const cli = async (s: SinkUnderTest, args: string[]) => {
    const out = await run(s, args);
    assert.equal(out.code, 0, `${s.kind} sink: vecsync ${args.join(' ')}: ${out.stderr}`);
    return out.stdout;
  };
  const searchCli = async (s: SinkUnderTest, text: string) =>
    JSON.parse(await cli(s, ['search', '--tenant', tenant, '--principal', 'g', '--top', '5', '--json', text])) as {
      document_id: string;
      chunk_index: number;
      score: number;
    }[];
  const sinkOf = (s: SinkUnderTest) => s.pipelines[0]!.sink;
  const searchDirect = async (s: SinkUnderTest, m: TestModel, text: string) =>
    (
      await sinkOf(s).search({
        modelKey: m.key,
        tenantId: tenant,
        principal: 'g',
        vector: hashingEmbed(text, m.dimensions),
        topK: 5,
      })
    ).map((h) => ({ document_id: h.documentId, chunk_index: h.chunkIndex, score: h.score }));
  const chunksIn = (s: SinkUnderTest, m: TestModel, document?: string) =>
    sinkOf(s).inspect({ modelKey: m.key, dimensions: m.dimensions }, tenant, document);
  const docsIn = async (s: SinkUnderTest, m: TestModel) => new Set((await chunksIn(s, m)).map((c) => c.document_id));
  const models = async (s: SinkUnderTest) =>
    (JSON.parse(await cli(s, ['models', 'list', '--json'])) as ModelRow[])
      .filter((m) => m.model === a.key || m.model === b.key)
      .map((m) => [m.model, m.state, m.serving])
      .sort((x, y) => String(x[0]).localeCompare(String(y[0])));
  const sorted = (rows: (string | boolean)[][]) => rows.sort((x, y) => String(x[0]).localeCompare(String(y[0])));
  const reembedState = async (s: SinkUnderTest) =>
    (JSON.parse(await cli(s, ['reembed', 'status', '--json'])) as { state: string }).state;
  /** Search in the sink reads model `m`'s index (through the CLI, which reads the serving row). */
  const assertServes = async (s: SinkUnderTest, m: TestModel) => {
    const query = 'kubernetes note';
    assert.deepEqual(await searchCli(s, query), await searchDirect(s, m, query), `${s.kind} sink searches ${m.key}`);
  };

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
  for (const s of sinks) {
    await waitFor(async () => (await syncedCount(pool, s.shared.sinkName, tenant, a.key)) === n, {
      timeoutMs: 180_000,
      description: `old model synced to the ${s.kind} sink`,
    });
  }

  // Register the next model and plan its backfill (the first sink); the other sinks join it.
  const started: { id: number; from: string; to: string; backfill: number }[] = [];
  for (const s of sinks) {
    const out = await cli(s, [
      'reembed',
      '--to',
      'hashing',
      '--model',
      b.name,
      '--dimensions',
      String(b.dimensions),
      '--rate',
      '10',
      '--tenant',
      tenant,
      '--detach',
    ]);
    started.push(JSON.parse(out) as (typeof started)[number]);
  }
  for (const [i, r] of started.entries()) {
    assert.deepEqual({ from: r.from, to: r.to }, { from: a.key, to: b.key }, `${sinks[i]!.kind} sink's re-embed`);
    assert.equal(r.backfill, started[0]!.backfill, 'one backfill feeds every sink');
  }
  const backfillId = started[0]!.backfill;
  for (const s of sinks) {
    assert.deepEqual(
      await models(s),
      sorted([
        [a.key, 'active', true],
        [b.key, 'backfilling', false],
      ]),
    );
  }
  for (const s of sinks) await startSinkPipeline(s, b, ['embedder', 'writer']);

  const runner = await vecsyncBackground(['backfill', 'resume', String(backfillId)], envOf(sinks[0]!, a), {
    waitForLine: false,
  });
  await waitFor(
    async () =>
      Number(
        (await pool.query<{ position: string }>('SELECT position FROM vecsync.backfills WHERE id = $1', [backfillId]))
          .rows[0]!.position,
      ) >= 12,
    { description: 'backfill past 12' },
  );
  runner.child.kill('SIGKILL');
  await runner.exited;
  // Changes while the re-embed is under way: a delete, a revoke, an edit.
  await pool.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, 'd30']);
  await pool.query('DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = $2 AND principal = $3', [
    tenant,
    'd31',
    'h',
  ]);
  const v32 = await updateDocument(pool, tenant, 'd32', 'body = $3', ['Edited during the re-embed.']);
  for (const s of sinks) {
    const status = JSON.parse(await cli(s, ['reembed', 'status', '--json'])) as {
      state: string;
      done: number;
      total: number;
    };
    assert.equal(status.state, 'backfilling');
    assert.ok(status.done < status.total, `${s.kind} sink: backfill at ${status.done}/${status.total}`);
  }
  await cli(sinks[0]!, ['backfill', 'resume', String(backfillId)]);

  for (const s of sinks) {
    for (const m of [a, b]) {
      await waitFor(async () => (await syncedCount(pool, s.shared.sinkName, tenant, m.key)) === n - 1, {
        timeoutMs: 180_000,
        description: `${m.key} synced to the ${s.kind} sink`,
      });
    }
  }
  // Reads are polled: Pinecone shows a write a moment after it was acknowledged.
  for (const s of sinks) {
    for (const m of [a, b]) {
      await waitFor(async () => !(await docsIn(s, m)).has('d30'), {
        description: `d30 gone from ${m.key} in the ${s.kind} sink`,
      });
      await waitFor(
        async () => {
          const chunks = await chunksIn(s, m, 'd31');
          return chunks.length > 0 && chunks.every((c) => !c.acl.includes('h'));
        },
        { description: `revoke reached ${m.key} in the ${s.kind} sink` },
      );
      await waitFor(
        async () => {
          const chunks = await chunksIn(s, m, 'd32');
          return chunks.length > 0 && chunks.every((c) => c.document_version === v32);
        },
        { description: `edit reached ${m.key} in the ${s.kind} sink` },
      );
    }
  }

  for (const s of sinks) {
    const status = JSON.parse(await cli(s, ['reembed', 'status', '--json'])) as Record<string, unknown>;
    assert.deepEqual(
      { from: status.from, to: status.to, state: status.state, done: status.done, total: status.total },
      { from: a.key, to: b.key, state: 'ready', done: n, total: n },
      `${s.kind} sink's status`,
    );
    const compare = JSON.parse(await cli(s, ['reembed', 'compare', '--json', '--tenant', tenant])) as {
      documents: { old: number; new: number; missing_in_new: number; extra_in_new: number };
      acl_mismatch: number;
      version_mismatch: number;
      topk_overlap: number;
      recall: { old: number; new: number; queries: number };
      clean: boolean;
    };
    const what = `${s.kind} sink's compare: ${JSON.stringify(compare)}`;
    assert.deepEqual(compare.documents, { old: n - 1, new: n - 1, missing_in_new: 0, extra_in_new: 0 }, what);
    assert.equal(compare.acl_mismatch, 0, what);
    assert.equal(compare.version_mismatch, 0, what);
    assert.equal(compare.clean, true, what);
    assert.ok(compare.topk_overlap > 0.3, what);
    assert.equal(compare.recall.queries, 6, what);
    assert.ok(compare.recall.old > 0.5 && compare.recall.new > 0.5, what);
  }

  // Cutover, one sink after the other: each switches its own search only.
  for (const s of sinks) await assertServes(s, a);
  // The readiness check compares the whole sink, and every sink here also holds other tests'
  // documents (the old model gets events of every tenant while it lives), so the check is the
  // tenant-scoped compare above and the cutover is forced.
  const cutoverArgs = ['reembed', 'cutover', '--force'];
  for (const [i, s] of sinks.entries()) {
    await cli(s, cutoverArgs);
    await assertServes(s, b);
    for (const later of sinks.slice(i + 1)) await assertServes(later, a);
    assert.deepEqual(
      (JSON.parse(await cli(s, ['models', 'list', '--json'])) as ModelRow[])
        .filter((m) => m.serving)
        .map((m) => m.model),
      [b.key],
    );
  }

  // Rollback, one sink after the other: back to the old index; the new one is kept. The new
  // model stays active while another sink still serves it.
  for (const [i, s] of sinks.entries()) {
    await cli(s, ['reembed', 'rollback']);
    await assertServes(s, a);
    assert.equal((await docsIn(s, b)).size, n - 1);
    assert.equal(await reembedState(s), 'rolled_back');
    const bState = i < sinks.length - 1 ? 'active' : 'ready';
    assert.deepEqual(
      await models(s),
      sorted([
        [a.key, 'active', true],
        [b.key, bState, false],
      ]),
      `${s.kind} sink after its rollback`,
    );
  }

  // Cutover again, then retire: not while another sink still serves the old model, not before
  // the grace period; then the old model stops receiving events and its index is dropped.
  await cli(sinks[0]!, cutoverArgs);
  if (sinks.length > 1) {
    const refused = await run(sinks[0]!, ['reembed', 'retire', '--grace', '0']);
    assert.notEqual(refused.code, 0, 'retire waits for every sink to stop serving the old model');
    assert.match(refused.stderr, new RegExp(`still serves sink\\(s\\) ${sinks[1]!.shared.sinkName}`));
  }
  for (const s of sinks.slice(1)) await cli(s, cutoverArgs);
  for (const s of sinks) {
    const early = await run(s, ['reembed', 'retire']);
    assert.notEqual(early.code, 0, `${s.kind} sink: retire waits for the grace period`);
  }
  for (const [i, s] of sinks.entries()) {
    await cli(s, ['reembed', 'retire', '--grace', '0']);
    if (i === 0 && sinks.length > 1) {
      // The old model is retired now: no sink can roll back to it any more.
      const late = await run(sinks[1]!, ['reembed', 'rollback']);
      assert.notEqual(late.code, 0, 'no rollback to a retired model');
      assert.match(late.stderr, /is retired/);
    }
    if (s.kind === 'pgvector') {
      // The old model's table is gone (this sink was its only user); a reader that had it cached fails.
      const leftover = await docsIn(s, a).catch((error: Error) => {
        assert.match(error.message, /does not exist/);
        return new Set<string>();
      });
      assert.equal(leftover.size, 0);
    } else {
      // Host mode: the old index is emptied, namespace by namespace; the new one is untouched.
      const left = s.servers.get(a.key)!.records(tenant).length;
      assert.equal(left, 0, `the old model's Pinecone index still holds ${left} records of the tenant`);
      assert.equal(
        new Set(
          s.servers
            .get(b.key)!
            .records(tenant)
            .filter((r) => r.id.includes('#'))
            .map((r) => r.id.split('#')[0]),
        ).size,
        n - 1,
      );
      await waitFor(
        async () => (await sinkOf(s).listTenants({ modelKey: a.key, dimensions: a.dimensions })).length === 0,
        {
          description: 'old Pinecone index empty',
        },
      );
    }
    assert.deepEqual(
      await models(s),
      sorted([
        [a.key, 'retired', false],
        [b.key, 'active', true],
      ]),
    );
    const ledgerA = await pool.query('SELECT 1 FROM vecsync.sync_state WHERE sink_name = $1 AND model_key = $2', [
      s.shared.sinkName,
      a.key,
    ]);
    assert.equal(ledgerA.rowCount, 0, `${s.kind} sink's ledger rows of the old model`);
    assert.equal(await reembedState(s), 'retired');
  }
  for (const s of sinks) await sinkOf(s).dropIndex({ modelKey: b.key, dimensions: b.dimensions });
}

describe('blue/green re-embed, one pgvector sink', () => {
  const ctx = setUpReembed('reembed', ['pgvector']);
  test(
    'backfill killed and resumed, changes reach both, compare clean, cutover, rollback, retire',
    { timeout: 600_000 },
    () => reembedFlow(ctx),
  );
});

describe('blue/green re-embed, two sinks at once: pgvector and Pinecone (contract server)', () => {
  const ctx = setUpReembed('resinks', ['pgvector', 'pinecone']);
  test(
    'one backfill for both, killed and resumed; changes reach all four indexes; compare clean on both; cutover, rollback and retire per sink',
    { timeout: 600_000 },
    () => reembedFlow(ctx),
  );
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
