/**
 * Credentials: the embedding provider answers 401 for 30 s under load (documents keep arriving
 * through the real triggers, Debezium and Kafka). The embedder pauses: it retries with backoff,
 * dead-letters nothing, shows `vecsync_service_paused{service="embedder",reason="openai_unauthorized"} 1`
 * and a row in `vecsync status`; when the key works again the backlog drains and the pause clears.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createEmbedderService } from '../services/pipeline/embedder/index.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import { metrics } from '../services/adapters/telemetry/metrics.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import { uniqueId } from './support/ids.ts';
import { startOpenAIServer, type OpenAIServer } from './support/openai-server.ts';
import { groupAtEnd, insertDocuments, startPipeline, type TestPipeline } from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const KEY = 'sk-credentials-test-key';
const OUTAGE_MS = 30_000;

describe('credentials refused by the embedding provider', { timeout: 5 * 60_000 }, () => {
  const tenant = `tenant_${uniqueId('creds')}`;
  // A model of this test alone (registered retired: no trigger enqueues for it; rows go to bulk).
  const model = { name: `creds-${uniqueId('m').replace(/_/g, '-')}`, version: 1 };
  let server: OpenAIServer;
  let p: TestPipeline;
  let embedderService: Service | undefined;

  before(async () => {
    server = await startOpenAIServer({ dimensions: 384, apiKey: KEY });
    p = await startPipeline('creds', {
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
    await p?.source
      .query('DELETE FROM vecsync.service_pauses WHERE sink_name = $1', [p.config.sink.name])
      .catch(() => undefined);
    await p?.stop();
    await server?.close();
  });

  test('a 401 for 30 s pauses the embedder, dead-letters nothing, and everything is applied afterwards', async () => {
    const embedder = createEmbedder({
      ...p.config.embedder,
      type: 'openai',
      openai: { baseUrl: server.url, apiKey: KEY, model: 'fake' },
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

    const enqueue = async (from: number, count: number) => {
      const docs = Array.from({ length: count }, (_, i) => ({
        tenant,
        id: `d${from + i}`,
        body: `Credentials ${tenant} document ${from + i}. `.repeat(20),
        acl: ['g'],
      }));
      await insertDocuments(p.source, docs);
      await p.source.query(
        `SELECT vecsync.enqueue_upsert(d, 'bulk', $2, $3) FROM vecsync.documents d
          WHERE tenant_id = $1 AND document_id = ANY($4::text[])`,
        [tenant, model.name, model.version, docs.map((d) => d.id)],
      );
    };

    const outageStart = Date.now();
    server.knobs.unauthorizedUntil = outageStart + OUTAGE_MS;
    // Under load: a batch of documents every 3 s while the key is refused.
    let total = 0;
    let pausedSeen = false;
    let statusSeen = false;
    while (Date.now() < outageStart + OUTAGE_MS - 3_000) {
      await enqueue(total, 10);
      total += 10;
      await new Promise((r) => setTimeout(r, 3_000));
      const gauge = (await metrics.servicePaused.get()).values.find(
        (v) => v.labels.service === 'embedder' && v.labels.reason === 'openai_unauthorized',
      );
      if (gauge?.value === 1) pausedSeen = true;
      if (!statusSeen) {
        const status = await collectStatus(p.config);
        statusSeen = status.paused.some((x) => x.sink_name === p.config.sink.name && x.reason === 'unauthorized');
      }
    }
    const refused = server.requests.filter((r) => r.status === 401).length;
    assert.ok(pausedSeen, 'vecsync_service_paused was 1 during the outage');
    assert.ok(statusSeen, 'vecsync status showed the pause');
    assert.ok(refused > 0 && refused < 200, `backoff, not a tight loop: ${refused} refused requests`);

    await waitFor(
      async () => {
        const res = await p.source.query(
          `SELECT 1 FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND model_key = $3 AND version > 0`,
          [p.config.sink.name, tenant, `${model.name}.v${model.version}`],
        );
        return res.rowCount === total ? true : undefined;
      },
      { timeoutMs: 120_000, description: 'backlog drained after the key works again' },
    );
    const recovered = (Date.now() - (outageStart + OUTAGE_MS)) / 1000;
    assert.deepEqual(dead, [], 'nothing was dead-lettered');
    const gauge = (await metrics.servicePaused.get()).values.find(
      (v) => v.labels.service === 'embedder' && v.labels.reason === 'openai_unauthorized',
    );
    assert.equal(gauge?.value, 0, 'the pause gauge cleared');
    await waitFor(
      async () =>
        (await collectStatus(p.config)).paused.every((x) => x.sink_name !== p.config.sink.name) ? true : undefined,
      { timeoutMs: 10_000, description: 'the status pause row cleared' },
    );
    process.stdout.write(
      `# ${total} documents, ${refused} refused requests in ${OUTAGE_MS / 1000} s; all applied ${recovered.toFixed(1)} s after the key worked again\n`,
    );
  });
});
