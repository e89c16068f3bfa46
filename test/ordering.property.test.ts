/**
 * Guarantees 2 and 3 as a property: random histories of upserts, ACL changes and deletes for a few
 * documents, delivered across the lanes in random order with duplicates, straight to the writer's
 * and the propagator's handlers (concurrently) against the real ledger and pgvector sink. The
 * final sink state must equal the source's final state, i.e. the events applied in version order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { createChunkCodec } from '../services/adapters/kafka/chunk-codec.ts';
import { loadConfig } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import type { DocumentChunks } from '../services/domain/types.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import type { InMessage } from '../services/adapters/kafka/message.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { createPropagatorHandler } from '../services/pipeline/propagator/index.ts';
import { createSink } from '../services/adapters/sinks/index.ts';
import type { Sink } from '../services/adapters/sinks/types.ts';
import { createChunker } from '../services/domain/transforms/chunker.ts';
import { documentContentHash } from '../services/domain/transforms/content-hash.ts';
import { createWriterHandler } from '../services/pipeline/writer/index.ts';
import { uniqueId } from './support/ids.ts';
import { testSinkName } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';

const RUNS = Number(process.env.VECSYNC_PROPERTY_RUNS ?? 200);
const PRINCIPALS = ['alice', 'bob', 'carol'];
const BODIES = [
  'Postgres replication keeps a standby in step. '.repeat(30),
  'Kubernetes autoscaling adds nodes under load. '.repeat(45),
  'Quarterly revenue forecast and budget review. '.repeat(12),
  'Incident response: rotate credentials, patch, audit. '.repeat(60),
  '',
];

type Op = { kind: 'update'; body: number } | { kind: 'acl'; acl: string[] } | { kind: 'delete' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('update' as const), body: fc.integer({ min: 0, max: BODIES.length - 1 }) }),
  fc.record({ kind: fc.constant('acl' as const), acl: fc.subarray(PRINCIPALS) }),
  fc.constant({ kind: 'delete' as const }),
);

interface SourceDoc {
  id: string;
  version: number;
  aclVersion: number;
  acl: string[];
  body: number;
  active: boolean;
}

type Emitted =
  | { lane: 'chunks'; doc: string; version: number; aclVersion: number; acl: string[]; body: number }
  | { lane: 'priority'; payload: Record<string, unknown> };

/** What the source triggers would emit for one document's history (see migrations/source/0002). */
function simulate(tenant: string, id: string, initialBody: number, ops: Op[]): { doc: SourceDoc; events: Emitted[] } {
  const doc: SourceDoc = { id, version: 1, aclVersion: 1, acl: ['alice'], body: initialBody, active: true };
  const at = new Date().toISOString();
  const upsert = (): Emitted => ({
    lane: 'chunks',
    doc: id,
    version: doc.version,
    aclVersion: doc.aclVersion,
    acl: [...doc.acl],
    body: doc.body,
  });
  const events: Emitted[] = [upsert()];
  for (const op of ops) {
    if (op.kind === 'update') {
      doc.version++;
      doc.body = op.body;
      doc.active = true;
      events.push(upsert());
    } else if (op.kind === 'delete') {
      if (!doc.active) continue;
      doc.version++;
      doc.active = false;
      events.push({
        lane: 'priority',
        payload: {
          op: 'delete',
          tenant_id: tenant,
          document_id: id,
          version: doc.version,
          acl_version: doc.aclVersion,
          reason: 'deleted',
          created_at: at,
        },
      });
    } else {
      doc.aclVersion++;
      doc.acl = [...op.acl].sort();
      // ACL changes of an inactive document emit nothing; a re-creating upsert carries the ACL.
      if (!doc.active) continue;
      events.push({
        lane: 'priority',
        payload: {
          op: 'acl',
          tenant_id: tenant,
          document_id: id,
          version: doc.version,
          acl_version: doc.aclVersion,
          acl: doc.acl,
          created_at: at,
        },
      });
    }
  }
  return { doc, events };
}

describe('newer wins and no stale permission, for any delivery order (property)', () => {
  let sink: Sink;
  let source: pg.Pool;
  let writer: ReturnType<typeof createWriterHandler>;
  let propagator: ReturnType<typeof createPropagatorHandler>;
  const config = loadConfig({
    ...process.env,
    VECSYNC_EMBEDDER: 'hashing',
    VECSYNC_SINK_NAME: testSinkName(),
    VECSYNC_LOG_LEVEL: 'warn',
  });
  const index = {
    modelKey: modelKey(config.embedder.model, config.embedder.version),
    dimensions: config.embedder.dimensions,
  };
  const codec = createChunkCodec(config.schemaRegistryUrl);
  /** Per body: the embedded chunks, computed once with the real chunker and embedder. */
  const chunksOf = new Map<number, DocumentChunks['chunks']>();

  before(async () => {
    await ensureStack();
    source = new pg.Pool({ connectionString: config.sourceUrl, max: 6 });
    sink = createSink(config);
    await sink.ensureIndex(index);
    await codec.register(topicsFor(config.topicPrefix).chunks(index.modelKey));
    writer = createWriterHandler({
      sink,
      source,
      sinkName: config.sink.name,
      schemaRegistryUrl: config.schemaRegistryUrl,
    });
    propagator = createPropagatorHandler({ sink, source, sinkName: config.sink.name, limits: config.limits });
    const chunker = createChunker({ size: config.chunking.size, overlap: config.chunking.overlap, maxChunks: 512 });
    const embedder = createEmbedder({ ...config.embedder, retry: config.retry });
    for (const [i, body] of BODIES.entries()) {
      const chunks = await chunker.chunk(body);
      const vectors = chunks.length ? await embedder.embed(chunks.map((c) => c.content)) : [];
      chunksOf.set(
        i,
        chunks.map((c, j) => ({
          chunk_index: c.index,
          content: c.content,
          content_hash: c.contentHash,
          embedding: vectors[j]!,
        })),
      );
    }
  });

  after(async () => {
    await sink?.close();
    await source?.end();
  });

  async function toMessage(tenant: string, e: Emitted, offset: number): Promise<InMessage> {
    if (e.lane === 'priority') {
      return {
        topic: 'vecsync.outbox.priority',
        partition: 0,
        offset: String(offset),
        key: `${tenant}:${String(e.payload.document_id)}`,
        value: Buffer.from(JSON.stringify(e.payload)),
        headers: {},
        timestamp: Date.now(),
      };
    }
    const chunks = chunksOf.get(e.body)!;
    const record: DocumentChunks = {
      tenant_id: tenant,
      document_id: e.doc,
      document_version: e.version,
      acl_version: e.aclVersion,
      acl: e.acl,
      chunk_count: chunks.length,
      model_key: index.modelKey,
      title: null,
      metadata: {},
      content_hash: documentContentHash(null, BODIES[e.body]!),
      created_at: new Date().toISOString(),
      outbox_id: null,
      chunks,
    };
    return {
      topic: 'chunks',
      partition: 0,
      offset: String(offset),
      key: `${tenant}:${e.doc}`,
      value: await codec.encode(record),
      headers: {},
      timestamp: Date.now(),
    };
  }

  test(`${RUNS} random histories end in the source's final state`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            body: fc.integer({ min: 0, max: BODIES.length - 1 }),
            ops: fc.array(opArb, { minLength: 1, maxLength: 8 }),
          }),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 10 }),
        async (histories, randomness, batchSizes) => {
          const tenant = `prop_${uniqueId('p')}`;
          const sims = histories.map((h, i) => simulate(tenant, `d${i}`, h.body, h.ops));
          // Every event once, some twice, all in a random order across lanes.
          const emitted = sims.flatMap((s) => s.events).flatMap((e) => (randomness.next().value < 0.3 ? [e, e] : [e]));
          const order = emitted.map((e) => ({ e, r: randomness.next().value as number })).sort((a, b) => a.r - b.r);
          const messages = await Promise.all(order.map(({ e }, i) => toMessage(tenant, e, i)));
          let i = 0;
          let step = 0;
          while (i < messages.length) {
            const size = batchSizes[step++ % batchSizes.length]!;
            const batch = messages.slice(i, i + size);
            i += size;
            const toWriter = batch.filter((m) => m.topic === 'chunks');
            const toPropagator = batch.filter((m) => m.topic !== 'chunks');
            // Both lanes at once: the ledger lock must serialize them.
            const [w, pr] = await Promise.all([
              toWriter.length ? writer(toWriter, { signal: new AbortController().signal }) : [],
              toPropagator.length ? propagator(toPropagator, { signal: new AbortController().signal }) : [],
            ]);
            for (const outcome of [...w, ...pr])
              assert.equal(outcome.kind, 'done', `nothing is dead-lettered: ${JSON.stringify(outcome)}`);
          }
          const stored = await sink.inspect(index, tenant);
          for (const { doc } of sims) {
            const chunks = stored.filter((c) => c.document_id === doc.id);
            if (!doc.active) {
              assert.deepEqual(chunks, [], `${doc.id} is deleted at v${doc.version}: no chunk may remain`);
              continue;
            }
            const expected = chunksOf.get(doc.body)!;
            assert.deepEqual(
              chunks.map((c) => [c.chunk_index, c.document_version, c.content_hash]),
              expected.map((c) => [c.chunk_index, doc.version, c.content_hash]),
              `${doc.id} content is v${doc.version}`,
            );
            for (const c of chunks) {
              assert.deepEqual([...c.acl].sort(), doc.acl, `${doc.id} ACL is the newest (v${doc.aclVersion})`);
              assert.equal(c.acl_version, doc.aclVersion);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
