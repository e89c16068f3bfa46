/**
 * Documents, ACLs and metadata of any size through the real triggers, Debezium and Kafka (plain
 * SQL only). Bodies of 2 MiB and 8 MiB sync with the defaults; a body over VECSYNC_MAX_BODY_BYTES
 * and one of 64 MiB are dead-lettered (body_too_large), and so is allowlisted metadata over
 * VECSYNC_MAX_METADATA_BYTES (metadata_too_large), their outbox rows marked failed, a
 * formerly searchable document that grew too large leaves search (fail closed), and documents of
 * another tenant inserted after them still sync: change capture never stops. A repair pass over
 * the tenant leaves change capture running. A 50,000-principal ACL syncs, and a revoke of one
 * principal reaches the sink.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { reasonOf } from '../services/domain/errors.ts';
import { ConnectClient } from '../services/ops/connect/connect-client.ts';
import { connectorName } from '../services/ops/connect/render.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import { reconcile, reconcilerDeps } from '../services/pipeline/reconciler/index.ts';
import { createChunker } from '../services/domain/transforms/chunker.ts';
import { uniqueId } from './support/ids.ts';
import { provisionTopics } from '../services/adapters/kafka/admin.ts';
import { createEmbedderService } from '../services/pipeline/embedder/index.ts';
import { createWriterService } from '../services/pipeline/writer/index.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import { metrics } from '../services/adapters/telemetry/metrics.ts';
import { startOpenAIServer, type OpenAIServer } from './support/openai-server.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import {
  groupAtEnd,
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  type TestPipeline,
} from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const MiB = 1024 * 1024;

/** `bytes` of ASCII words, deterministic per seed, so chunks differ (no embedding-cache shortcut). */
function text(bytes: number, seed: number): string {
  const words = ['vector', 'sync', 'outbox', 'kafka', 'lane', 'ledger', 'chunk', 'tenant', 'permission', 'replica'];
  const parts: string[] = [];
  let n = 0;
  let state = seed >>> 0 || 1;
  while (n < bytes) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const w = `${words[state % words.length]}${state % 997}`;
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(' ').slice(0, bytes);
}

async function connectorRunning(p: TestPipeline): Promise<void> {
  const status = await new ConnectClient(p.config.connectUrl).getStatus(connectorName(p.config.topicPrefix));
  assert.ok(status, 'connector exists');
  assert.equal(status.connector.state, 'RUNNING');
  assert.ok(status.tasks.length > 0 && status.tasks.every((t) => t.state === 'RUNNING'), JSON.stringify(status.tasks));
}

describe('documents of any size through change capture', { timeout: 15 * 60_000 }, () => {
  let p: TestPipeline;
  const big = uniqueId('big');
  const other = uniqueId('after');

  const services: Service[] = [];
  const outboxSeen: Promise<{ key: string; status: string; error: string | null }>[] = [];

  before(async () => {
    // Info logs: the runner reports rebalances and uncommitted slices there (the open problem below).
    p = await startPipeline('large', { services: ['propagator'], env: { VECSYNC_LOG_LEVEL: 'info' } });
    // The stack is shared: refuse to run (rather than stop change capture for everyone) when the
    // payload functions of migration 0008 or the connector's record limit are not in place.
    const { rows } = await p.source.query<{ bytes: number }>(
      `SELECT octet_length(vecsync.document_payload(d, 'm', 1)::text) AS bytes
         FROM (SELECT ('t', 'd', 't', repeat('x', 2097152), 'en', 'active', '{}', '{}', 1, 1, now())::vecsync.documents AS d) s`,
    );
    assert.ok(rows[0]!.bytes < 65_536, `upsert payloads are not bounded (${rows[0]!.bytes} bytes): migration 0008`);
    // Without the connector's 16 MiB record limit (another branch may have re-applied its own
    // config) bounded payloads still fit; only an ACL over ~1 MiB would not, and none is used here.
    const live = await new ConnectClient(p.config.connectUrl).getConfig(connectorName(p.config.topicPrefix));
    if (live?.['producer.override.max.request.size'] !== '16777216') {
      console.log('# note: the shared connector runs without producer.override.max.request.size');
    }
    // A chunk topic of this test only: embedders of other pipelines on the shared lanes (other
    // tests, other branches) then cannot write this sink's chunk records before ours do.
    const chunkTopic = `test.${p.config.sink.name}.chunks.${p.rt.activeIndex.modelKey}`;
    p.rt.topics = { ...p.rt.topics, chunks: () => chunkTopic };
    await provisionTopics(p.rt.kafka, [{ topic: chunkTopic, partitions: 3, configs: {} }]);
    for (const lane of ['live', 'bulk'] as const) {
      await groupAtEnd(p.config, `${p.rt.groupId('embedder')}.${lane}`, [p.rt.topics.lane(lane)]);
    }
    const record = (
      messages: TestPipeline['committed']['embedder'][number]['message'][],
      outcomes: TestPipeline['committed']['embedder'][number]['outcome'][],
      timing: TestPipeline['committed']['embedder'][number]['timing'],
    ) =>
      messages.forEach((message, i) => {
        p.committed.embedder.push({ message, outcome: outcomes[i]!, timing });
        // The runner marks the outbox row failed before it commits. The status column is global,
        // and pipelines of other tests (other sinks) may mark the same row afterwards, so it is
        // read here, right after our commit.
        const id = message.headers['outbox_id'];
        if (outcomes[i]!.kind === 'dead' && id && message.key?.startsWith(`${big}:`)) {
          outboxSeen.push(
            p.source
              .query<{ status: string; error: string | null }>(
                'SELECT status, error FROM vecsync.vector_sync_outbox WHERE id = $1',
                [id],
              )
              .then((r) => ({ key: message.key!, ...r.rows[0]! })),
          );
        }
      });
    services.push(await createEmbedderService(p.rt, { onCommitted: record }));
    services.push(await createWriterService(p.rt, { topics: [chunkTopic] }));
    for (const s of services) await s.start();
  });
  after(async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    await p?.stop();
  });

  test('2 MiB and 8 MiB sync; over the limit and 64 MiB are dead-lettered and leave search; CDC keeps running', async () => {
    const started = Date.now();
    const limit = p.config.limits.maxBodyBytes;
    // A document that is searchable first, then grows over the limit: it must leave search.
    // And one whose allowlisted metadata grows over the limit.
    await insertDocuments(p.source, [
      { tenant: big, id: 'grows', body: text(4000, 1), acl: ['group:a'] },
      { tenant: big, id: 'metagrows', body: text(4000, 4), acl: ['group:a'], metadata: { category: 'small' } },
    ]);
    await waitForVersion(p, big, 'grows', 1, 120_000);
    await waitForVersion(p, big, 'metagrows', 1, 120_000);
    assert.ok((await p.sink.inspect(p.rt.activeIndex, big, 'grows')).length > 0, 'grows is searchable');
    assert.ok((await p.sink.inspect(p.rt.activeIndex, big, 'metagrows')).length > 0, 'metagrows is searchable');

    for (const [id, bytes, seed] of [
      ['two', 2 * MiB, 2],
      ['eight', 8 * MiB, 8],
      ['over', limit + 1, 9],
      ['huge', 64 * MiB, 64],
    ] as const) {
      await insertDocuments(p.source, [{ tenant: big, id, body: text(bytes, seed), acl: ['group:a'] }]);
    }
    // Allowlisted metadata over VECSYNC_MAX_METADATA_BYTES: the same treatment as a body.
    await insertDocuments(p.source, [
      { tenant: big, id: 'meta', body: 'small body', acl: ['group:a'], metadata: { category: text(64 * 1024, 5) } },
    ]);
    const grown = await updateDocument(p.source, big, 'grows', 'body = $3', [text(limit + 10, 3)]);
    const metaGrown = await updateDocument(p.source, big, 'metagrows', 'metadata = $3', [
      JSON.stringify({ category: text(64 * 1024, 6) }),
    ]);
    // Inserted after all of them, by another tenant: must sync, so change capture is running.
    await insertDocuments(
      p.source,
      Array.from({ length: 5 }, (_, i) => ({
        tenant: other,
        id: `d${i}`,
        body: `after the big ones ${i}`,
        acl: ['u'],
      })),
    );
    for (let i = 0; i < 5; i++) await waitForVersion(p, other, `d${i}`, 1, 240_000);
    const otherSynced = (Date.now() - started) / 1000;

    await waitForVersion(p, big, 'two', 1, 300_000);
    await waitForVersion(p, big, 'eight', 1, 600_000);
    const chunker = createChunker({ ...p.config.chunking, maxChunks: p.config.limits.maxChunks });
    for (const [id, bytes, seed] of [
      ['two', 2 * MiB, 2],
      ['eight', 8 * MiB, 8],
    ] as const) {
      const expected = (await chunker.chunk(text(bytes, seed))).length;
      const stored = await p.sink.inspect(p.rt.activeIndex, big, id);
      assert.equal(stored.length, expected, `${id}: every chunk is in the sink`);
    }
    const bigSynced = (Date.now() - started) / 1000;

    // Known problem (issue 11, open): on a loaded machine the slice of an oversized document is
    // dead-lettered several times before its commit holds, so this can take minutes, not seconds.
    await waitFor(async () => (outboxSeen.length >= 5 ? true : undefined), {
      timeoutMs: 480_000,
      description: 'five dead letters of the oversized documents',
    }).catch((error: Error) => {
      // What the embedder committed for this tenant so far: says which slice never committed.
      const seen = p.committed.embedder
        .filter((c) => c.message.key?.startsWith(`${big}:`))
        .map(
          (c) => `${c.message.key!.slice(big.length + 1)}@${c.message.partition}/${c.message.offset}:${c.outcome.kind}`,
        );
      throw new Error(`${error.message}; committed for the tenant: ${seen.join(', ') || 'nothing'}`, { cause: error });
    });
    for (const seen of await Promise.all(outboxSeen)) {
      assert.equal(seen.status, 'failed', `${seen.key}'s outbox row`);
      assert.match(
        seen.error ?? '',
        /:meta(grows)?$/.test(seen.key)
          ? /^metadata_too_large: (metadata_too_large: )?(allowlisted )?metadata of \d+ bytes exceeds/
          : /^body_too_large: (body_too_large: )?body of \d+ bytes exceeds/,
      );
    }
    const dead = p.committed.embedder.filter((c) => c.outcome.kind === 'dead' && c.message.key?.startsWith(`${big}:`));
    const deadKeys = dead.map((c) => c.message.key).sort();
    assert.deepEqual(deadKeys, [`${big}:grows`, `${big}:huge`, `${big}:meta`, `${big}:metagrows`, `${big}:over`]);
    for (const c of dead) {
      const expected = /:meta(grows)?$/.test(c.message.key!) ? 'metadata_too_large' : 'body_too_large';
      assert.equal(c.outcome.kind === 'dead' && reasonOf(c.outcome.error), expected);
    }

    // Fail closed: the grown document is no longer served with content the source no longer holds.
    await waitForVersion(p, big, 'grows', grown, 60_000);
    assert.equal((await p.sink.inspect(p.rt.activeIndex, big, 'grows')).length, 0, 'grows left search');
    await waitForVersion(p, big, 'metagrows', metaGrown, 60_000);
    assert.equal((await p.sink.inspect(p.rt.activeIndex, big, 'metagrows')).length, 0, 'metagrows left search');
    assert.equal((await p.sink.inspect(p.rt.activeIndex, big, 'huge')).length, 0);
    assert.equal((await p.sink.inspect(p.rt.activeIndex, big, 'meta')).length, 0);

    const status = await collectStatus(p.config);
    assert.ok(
      (status.outbox_failed_by_reason.body_too_large ?? 0) >= 3 &&
        (status.outbox_failed_by_reason.metadata_too_large ?? 0) >= 2,
      JSON.stringify(status.outbox_failed_by_reason),
    );
    await connectorRunning(p);
    console.log(
      `# other tenant synced after ${otherSynced.toFixed(1)} s; 2 + 8 MiB synced after ${bigSynced.toFixed(1)} s (shared 2-core machine)`,
    );
  });

  test('a repair pass after that leaves change capture running', async () => {
    const deps = await reconcilerDeps(p.rt, p.sink);
    await reconcile(deps, { tenants: [big], settleMs: 0, repair: true });
    await insertDocuments(p.source, [{ tenant: other, id: 'after-repair', body: 'still flowing', acl: ['u'] }]);
    await waitForVersion(p, other, 'after-repair', 1, 240_000);
    await connectorRunning(p);
    // Whatever the repair re-enqueued for the oversized documents is dead-lettered again, not synced.
    assert.equal((await p.sink.inspect(p.rt.activeIndex, big, 'huge')).length, 0);
  });

  test('an ACL of 50,000 principals syncs, and a revoke of one principal reaches the sink', async () => {
    const tenant = uniqueId('acl50k');
    await p.source.query(
      `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal)
       SELECT $1, 'wide', 'user:' || lpad(g::text, 6, '0') FROM generate_series(1, 50000) g`,
      [tenant],
    );
    await insertDocuments(p.source, [{ tenant, id: 'wide', body: 'visible to fifty thousand' }]);
    await waitForVersion(p, tenant, 'wide', 1, 240_000);
    const aclOf = async () => {
      const [chunk] = await p.sink.inspect(p.rt.activeIndex, tenant, 'wide');
      return chunk?.acl ?? [];
    };
    assert.equal((await aclOf()).length, 50_000);
    await p.source.query(`DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND principal = 'user:000042'`, [
      tenant,
    ]);
    const revokedAt = Date.now();
    await waitFor(async () => ((await aclOf()).length === 49_999 ? true : undefined), {
      timeoutMs: 120_000,
      description: 'the revoke reaches the sink',
    });
    assert.ok(!(await aclOf()).includes('user:000042'));
    console.log(`# 50k ACL revoke applied ${((Date.now() - revokedAt) / 1000).toFixed(1)} s after the DELETE`);
  });
});

describe('long documents at 1,536 dimensions (OpenAI contract server)', { timeout: 10 * 60_000 }, () => {
  const tenant = `tenant_${uniqueId('long1536')}`;
  // A model of this test alone (registered retired: no trigger enqueues for it; rows go to bulk).
  const model = { name: `long1536-${uniqueId('m').replace(/_/g, '-')}`, version: 1 };
  let server: OpenAIServer;
  let p: TestPipeline;
  let embedderService: Service | undefined;

  before(async () => {
    server = await startOpenAIServer({ dimensions: 1536 });
    p = await startPipeline('long1536', {
      services: ['writer'],
      env: {
        VECSYNC_EMBEDDING_MODEL: model.name,
        VECSYNC_EMBEDDING_VERSION: String(model.version),
        VECSYNC_EMBEDDING_DIMENSIONS: '1536',
      },
    });
    await p.source.query(
      `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state)
       VALUES ($1, $2, 1536, 'recursive-char', 1, $3, $4, 'retired')`,
      [model.name, model.version, p.config.chunking.size, p.config.chunking.overlap],
    );
  });
  after(async () => {
    await embedderService?.stop();
    await p?.source.query('DELETE FROM vecsync.embedding_models WHERE name = $1', [model.name]).catch(() => undefined);
    await p?.stop();
    await server?.close();
  });

  test('a batch of long documents drains with lag back to 0, nothing dead-lettered', async () => {
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
    const docs = Array.from({ length: 16 }, (_, i) => ({ tenant, id: `long${i}`, body: text(80_000, 100 + i) }));
    await insertDocuments(p.source, docs);
    const started = Date.now();
    await p.source.query(
      `SELECT vecsync.enqueue_upsert(d, 'bulk', $2, $3) FROM vecsync.documents d WHERE tenant_id = $1`,
      [tenant, model.name, model.version],
    );
    for (const d of docs) await waitForVersion(p, tenant, d.id, 1, 300_000);
    const drained = (Date.now() - started) / 1000;
    const lagOf = async (group: string) =>
      (await metrics.consumerLag.get()).values.filter((v) => v.labels.group === group).reduce((n, v) => n + v.value, 0);
    await waitFor(
      async () =>
        (await lagOf(`${p.rt.groupId('embedder')}.bulk`)) === 0 && (await lagOf(p.rt.groupId('writer'))) === 0
          ? true
          : undefined,
      { timeoutMs: 60_000, description: 'embedder and writer lag back to 0' },
    );
    assert.deepEqual(dead, []);
    const stored = await p.sink.inspect(p.rt.activeIndex, tenant, 'long0');
    assert.ok(stored.length > 100, `${stored.length} chunks of long0`);
    console.log(`# 16 x 80 kB at 1536 dimensions applied in ${drained.toFixed(1)} s (shared 2-core machine)`);
  });
});
