/**
 * The embedding endpoint is down for a while: the embedder backs off behind its circuit breaker
 * (no tight loop, no dead letters), the backlog shows in the lag metric, and drains on its own once
 * the endpoint is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createEmbedderService } from '../services/pipeline/embedder/index.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import { metrics } from '../services/adapters/telemetry/metrics.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import { uniqueId } from './support/ids.ts';
import { startOpenAIServer, type OpenAIServer } from './support/openai-server.ts';
import { groupAtEnd, insertDocuments, startPipeline, type TestPipeline } from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

describe('embedding endpoint outage', () => {
  const tenant = `tenant_${uniqueId('outage')}`;
  // A model of this test alone (registered retired: no trigger enqueues for it).
  const model = { name: `outage-${uniqueId('m').replace(/_/g, '-')}`, version: 1 };
  let server: OpenAIServer;
  let p: TestPipeline;
  let embedderService: Service | undefined;

  before(async () => {
    server = await startOpenAIServer({ dimensions: 384 });
    p = await startPipeline('outage', {
      services: ['propagator', 'writer'],
      env: {
        VECSYNC_EMBEDDING_MODEL: model.name,
        VECSYNC_EMBEDDING_VERSION: String(model.version),
        VECSYNC_EMBED_BREAKER_RESET_MS: '2000',
        VECSYNC_RETRY_MAX_MS: '2000',
      },
    });
    await p.source.query(
      `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state)
       VALUES ($1, $2, 384, 'recursive-char', 1, $3, $4, 'retired')`,
      [model.name, model.version, p.config.chunking.size, p.config.chunking.overlap],
    );
  });
  after(async () => {
    await embedderService?.stop();
    await p?.source.query('DELETE FROM vecsync.embedding_models WHERE name = $1', [model.name]).catch(() => undefined);
    await p?.stop();
    await server?.close();
  });

  test('backs off without dead letters while the endpoint fails, then drains the backlog', async () => {
    const embedder = createEmbedder({
      ...p.config.embedder,
      type: 'openai',
      openai: { baseUrl: server.url, apiKey: '', model: 'fake' },
      retry: p.config.retry,
    });
    for (const lane of ['live', 'bulk'] as const) {
      await groupAtEnd(p.config, `${p.rt.groupId('embedder')}.${lane}`, [p.rt.topics.lane(lane)]);
    }
    const dead: string[] = [];
    embedderService = await createEmbedderService(p.rt, {
      embedder,
      onCommitted: (messages, outcomes) =>
        outcomes.forEach((o, i) => {
          if (o.kind === 'dead' && messages[i]!.key?.startsWith(`${tenant}:`)) dead.push(messages[i]!.key!);
        }),
    });
    await embedderService.start();

    server.knobs.fail500 = 1_000_000; // down
    const docs = Array.from({ length: 30 }, (_, i) => ({
      tenant,
      id: `d${i}`,
      body: `Outage ${tenant} document ${i}.`,
      acl: ['g'],
    }));
    await insertDocuments(p.source, docs);
    await p.source.query(
      `SELECT vecsync.enqueue_upsert(d, 'bulk', $2, $3) FROM vecsync.documents d WHERE tenant_id = $1`,
      [tenant, model.name, model.version],
    );
    const outageStart = server.requests.length;
    const outageMs = 15_000;
    await new Promise((r) => setTimeout(r, outageMs));
    const during = server.requests.length - outageStart;
    // Lag is visible while the endpoint is down.
    const lag = (await metrics.consumerLag.get()).values
      .filter((v) => v.labels.group === `${p.rt.groupId('embedder')}.bulk`)
      .reduce((n, v) => n + v.value, 0);
    const age = (await metrics.oldestUnappliedAge.get()).values.find(
      (v) => v.labels.service === 'embedder' && v.labels.lane === 'bulk',
    );

    server.knobs.fail500 = 0; // back
    await waitFor(
      async () => {
        const res = await p.source.query(
          `SELECT 1 FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND model_key = $3 AND version > 0`,
          [p.config.sink.name, tenant, `${model.name}.v${model.version}`],
        );
        return res.rowCount === docs.length;
      },
      { timeoutMs: 60_000, description: 'backlog drained after the outage' },
    );
    process.stdout.write(
      `# ${during} provider requests during a ${outageMs / 1000} s outage; bulk lag seen ${lag}; oldest unapplied age ${age?.value.toFixed(1)} s\n`,
    );
    assert.ok(during > 0, 'the embedder kept probing');
    assert.ok(during < 40, `no tight loop: ${during} requests in ${outageMs / 1000} s`);
    assert.deepEqual(dead, [], 'a transient outage dead-letters nothing');
    assert.ok((age?.value ?? 0) > 5, 'the oldest unapplied event age shows the outage');
    assert.ok(lag >= 1, 'the lag metric shows the backlog');
    const drained = (await metrics.consumerLag.get()).values
      .filter((v) => v.labels.group === `${p.rt.groupId('embedder')}.bulk`)
      .reduce((n, v) => n + v.value, 0);
    assert.equal(drained, 0, 'and shows it drained');
  });
});
