/**
 * Hostile input on the real stack: more than 1,000 malformed or hostile events produced straight
 * into the lanes and the chunk topic, mixed with valid traffic through the real outbox. Zero
 * crashes; every hostile event is dead-lettered with its reason (and the original bytes); every
 * valid document is applied.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createEmbedderService } from '../services/pipeline/embedder/index.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import { DLQ_HEADER } from '../services/adapters/kafka/dlq.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import { uniqueId } from './support/ids.ts';
import { kafkaClient, readToEnd } from './support/kafka.ts';
import { startOpenAIServer, type OpenAIServer } from './support/openai-server.ts';
import { groupAtEnd, insertDocuments, startPipeline, waitForVersion, type TestPipeline } from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const PER_KIND = 110;
const MAX_BODY = 20_000;
const MAX_METADATA = 2_000;
/** 20,000 characters cut at 800 with overlap 100 is about 28 chunks. */
const MAX_CHUNKS = 20;
const KINDS = 12;

interface Hostile {
  topic: string;
  key: string | null;
  value: Buffer | null;
  reason: string;
}

function upsertPayload(tenant: string, doc: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    op: 'upsert',
    tenant_id: tenant,
    document_id: doc,
    version: 1,
    acl_version: 1,
    acl: ['group:eng'],
    title: 't',
    body: 'hostile but well formed',
    language: 'en',
    status: 'active',
    metadata: {},
    model: { name: 'hashing-384', version: 1 },
    created_at: new Date().toISOString(),
    ...extra,
  };
}

/** Every kind of bad input (KINDS of them), PER_KIND of each, with the DLQ reason it must get. */
function hostileEvents(tenant: string, lanes: { live: string; priority: string; chunks: string }): Hostile[] {
  const out: Hostile[] = [];
  for (let i = 0; i < PER_KIND; i++) {
    const doc = `h${i}`;
    const key = `${tenant}:${doc}`;
    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    out.push(
      { topic: lanes.live, key, value: Buffer.from(`{"op":"upsert","tenant_id":"${tenant}",`), reason: 'invalid_json' },
      {
        topic: lanes.live,
        key,
        value: json({ ...upsertPayload(tenant, doc), op: 'merge' }),
        reason: 'unknown_operation',
      },
      {
        topic: lanes.live,
        key,
        value: json({ op: 'upsert', tenant_id: tenant, document_id: doc }),
        reason: 'missing_field',
      },
      {
        topic: lanes.live,
        key,
        value: json(upsertPayload(tenant, doc, { body: 'x'.repeat(MAX_BODY + 10) })),
        reason: 'body_too_large',
      },
      {
        topic: lanes.live,
        key,
        value: json(upsertPayload(tenant, doc, { body: `nul\u0000byte ${i}` })),
        reason: 'nul_byte',
      },
      { topic: lanes.live, key, value: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), reason: 'invalid_utf8' },
      { topic: lanes.live, key, value: null, reason: 'empty_value' },
      {
        topic: lanes.live,
        key,
        value: json(upsertPayload(tenant, doc, { model: { name: 'no-such-model', version: 9 } })),
        reason: 'unknown_model',
      },
      {
        topic: lanes.priority,
        key,
        value: json({
          op: 'acl',
          tenant_id: `${tenant}-other`,
          document_id: doc,
          version: 1,
          acl_version: 2,
          acl: [],
          created_at: new Date().toISOString(),
        }),
        reason: 'key_mismatch',
      },
      {
        topic: lanes.chunks,
        key,
        value: Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), Buffer.from(`garbage ${i}`)]),
        reason: 'undecodable_avro',
      },
    );
  }
  return out;
}

describe('hostile input', () => {
  let p: TestPipeline;
  const tenant = `tenant_${uniqueId('hostile')}`;

  before(async () => {
    p = await startPipeline('hostile', {
      env: {
        VECSYNC_MAX_BODY_BYTES: String(MAX_BODY),
        VECSYNC_MAX_METADATA_BYTES: String(MAX_METADATA),
        VECSYNC_MAX_CHUNKS: String(MAX_CHUNKS),
      },
    });
  });
  after(async () => {
    await p?.stop();
  });

  test(`${PER_KIND * KINDS} hostile events are dead-lettered with their reason while valid traffic is applied`, async () => {
    const lanes = {
      live: p.rt.topics.lane('live'),
      priority: p.rt.topics.lane('priority'),
      chunks: p.rt.topics.chunks(p.rt.activeIndex.modelKey),
    };
    const hostile = hostileEvents(tenant, lanes);
    const valid = Array.from({ length: 40 }, (_, i) => ({
      tenant,
      id: `valid-${i}`,
      body: `Valid document ${i} about replication.`,
      acl: ['group:eng'],
    }));
    const producer = kafkaClient(p.config.kafkaBrokers).producer();
    await producer.connect();
    const firstHalf = await insertDocuments(p.source, valid.slice(0, 20));
    for (const topic of Object.values(lanes)) {
      const messages = hostile.filter((h) => h.topic === topic).map((h) => ({ key: h.key, value: h.value }));
      for (let i = 0; i < messages.length; i += 200)
        await producer.send({ topic, messages: messages.slice(i, i + 200) });
    }
    await producer.disconnect();
    const secondHalf = await insertDocuments(p.source, valid.slice(20));

    for (const [id, version] of [...firstHalf, ...secondHalf]) await waitForVersion(p, tenant, id, version);
    const mine = (service: 'embedder' | 'writer' | 'propagator') =>
      p.committed[service].filter((c) => c.message.key?.startsWith(`${tenant}:h`));
    await waitFor(() => mine('embedder').length + mine('writer').length + mine('propagator').length >= hostile.length, {
      timeoutMs: 120_000,
      description: `all ${hostile.length} hostile events handled`,
    });

    const all = [...mine('embedder'), ...mine('writer'), ...mine('propagator')];
    assert.equal(all.length, hostile.length, 'each hostile event handled exactly once');
    const dead = all.filter((c) => c.outcome.kind === 'dead');
    assert.equal(dead.length, hostile.length, 'every hostile event is dead-lettered, none applied');

    // The dead letters are in the DLQ topics with their reasons and the original bytes.
    const dlq = await readToEnd({
      brokers: p.config.kafkaBrokers,
      topics: [p.rt.topics.dlq('embedder'), p.rt.topics.dlq('writer'), p.rt.topics.dlq('propagator')],
      // Only this pipeline's dead letters: other pipelines on the shared topics dead-letter them too.
      keep: (m) =>
        (m.key?.toString().startsWith(`${tenant}:h`) ?? false) &&
        (m.headers[DLQ_HEADER.group]?.toString().startsWith(p.config.groupPrefix) ?? false),
      timeoutMs: 60_000,
    });
    const reasons = new Map<string, number>();
    for (const m of dlq) {
      const reason = m.headers[DLQ_HEADER.reason]?.toString() ?? 'none';
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      assert.ok(m.headers[DLQ_HEADER.topic], 'original topic header');
      assert.ok(m.headers[DLQ_HEADER.offset], 'original offset header');
      assert.ok(m.headers[DLQ_HEADER.attempts], 'attempts header');
    }
    const expected = new Map<string, number>();
    for (const h of hostile) expected.set(h.reason, (expected.get(h.reason) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries([...reasons].sort()), Object.fromEntries([...expected].sort()));
    // Original bytes kept: the truncated JSON is in the DLQ as it was produced.
    assert.ok(dlq.some((m) => m.value?.toString() === `{"op":"upsert","tenant_id":"${tenant}",`));

    // The pipeline kept going: a document written after all of it still syncs.
    const late = await insertDocuments(p.source, [
      { tenant, id: 'late', body: 'After the storm.', acl: ['group:eng'] },
    ]);
    await waitForVersion(p, tenant, 'late', late.get('late')!);
  });
});

// Its own top-level suite: no other embedder of the same model runs meanwhile, so nothing comes from the hash cache.
describe('an embedding provider returning the wrong dimension', () => {
  const tenant = `tenant_${uniqueId('wrongdim')}`;
  // A model of this test alone, registered retired so the triggers never enqueue for it: only the
  // rows this test enqueues reach its embedder, and no other embedder's hash cache can serve them.
  const model = { name: `wrongdim-${uniqueId('m').replace(/_/g, '-')}`, version: 1 };
  let server: OpenAIServer;
  let q: TestPipeline;
  let wrong: Service | undefined;

  before(async () => {
    server = await startOpenAIServer({ dimensions: 384 });
    q = await startPipeline('wrongdim', {
      services: ['propagator', 'writer'],
      env: { VECSYNC_EMBEDDING_MODEL: model.name, VECSYNC_EMBEDDING_VERSION: String(model.version) },
    });
    await q.source.query(
      `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state)
       VALUES ($1, $2, 384, 'recursive-char', 1, $3, $4, 'retired')`,
      [model.name, model.version, q.config.chunking.size, q.config.chunking.overlap],
    );
  });
  after(async () => {
    await wrong?.stop();
    await q?.source.query('DELETE FROM vecsync.embedding_models WHERE name = $1', [model.name]).catch(() => undefined);
    await q?.stop();
    await server?.close();
  });

  /** Inserts documents and enqueues them on the bulk lane for the test model (as a re-embed does). */
  async function enqueue(docs: { tenant: string; id: string; body: string; acl: string[] }[]): Promise<void> {
    await insertDocuments(q.source, docs);
    await q.source.query(
      `SELECT vecsync.enqueue_upsert(d, 'bulk', $3, $4) FROM vecsync.documents d WHERE tenant_id = $1 AND document_id = ANY($2)`,
      [tenant, docs.map((d) => d.id), model.name, model.version],
    );
  }

  test('is refused with a clear reason per document, and the service keeps running', async () => {
    server.knobs.dimensions = 128;
    const embedder = createEmbedder({
      ...q.config.embedder,
      type: 'openai',
      openai: { baseUrl: server.url, apiKey: '', model: 'fake' },
      retry: q.config.retry,
    });
    for (const lane of ['live', 'bulk'] as const) {
      await groupAtEnd(q.config, `${q.rt.groupId('embedder')}.${lane}`, [q.rt.topics.lane(lane)]);
    }
    const handled: { key: string | null; kind: string; reason?: string }[] = [];
    wrong = await createEmbedderService(q.rt, {
      embedder,
      onCommitted: (messages, outcomes) =>
        messages.forEach((m, i) => {
          const o = outcomes[i]!;
          if (o.kind === 'done' && o.result === 'skipped') return; // events for other models
          handled.push({
            key: m.key,
            kind: o.kind,
            ...(o.kind === 'dead' ? { reason: (o.error as { reason?: string }).reason } : {}),
          });
        }),
    });
    await wrong.start();
    const run = uniqueId('dim');
    const docs = Array.from({ length: 5 }, (_, i) => ({
      tenant,
      id: `dim-${i}`,
      body: `Dimension check ${run} ${i}.`,
      acl: ['group:eng'],
    }));
    await enqueue(docs);
    await waitFor(() => handled.filter((h) => h.key?.startsWith(`${tenant}:dim-`)).length >= docs.length, {
      timeoutMs: 60_000,
      description: 'the wrong-dimension embedder handled the documents',
    });
    const mine = handled.filter((h) => h.key?.startsWith(`${tenant}:dim-`));
    assert.ok(
      mine.every((h) => h.kind === 'dead' && h.reason === 'wrong_dimension'),
      JSON.stringify(mine),
    );
    assert.ok(server.requests.length > 0, 'the provider was asked');
    // The service kept running: once the provider answers correctly, documents flow again.
    server.knobs.dimensions = 384;
    await enqueue([{ tenant, id: 'dim-ok', body: `Dimension fixed ${run}.`, acl: ['group:eng'] }]);
    await waitFor(
      async () =>
        (await q.sink.inspect({ modelKey: `${model.name}.v${model.version}`, dimensions: 384 }, tenant, 'dim-ok'))
          .length > 0,
      { timeoutMs: 60_000, description: 'dim-ok applied' },
    );
  });
});
