/**
 * Guarantees 2 and 3 as a property: random histories of a few documents as plain SQL statements
 * (insert, update, hard delete and re-insert, archive, restore, soft delete, ACL grant and revoke)
 * run through the real triggers; the outbox rows they wrote are delivered across the lanes in
 * random order with duplicates, straight to the writer's and the propagator's handlers
 * (concurrently) against the real ledger and pgvector sink. The final sink state must equal the
 * source's final state. (Content upserts are turned into the embedder's chunk records here, with
 * the real chunker and embedder; the embedder service is not in the loop.)
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
import { createWriterHandler } from '../services/pipeline/writer/index.ts';
import {
  BODIES,
  PRE_STATES,
  PRINCIPALS,
  setUp,
  sourceState,
  statementOf,
  type DocOp,
  type PreState,
} from './support/histories.ts';
import { uniqueId } from './support/ids.ts';
import { testSinkName } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';

const RUNS = Number(process.env.VECSYNC_PROPERTY_RUNS ?? 100);

const opArb: fc.Arbitrary<DocOp> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), body: fc.integer({ min: 0, max: BODIES.length - 1 }) }),
  fc.record({ kind: fc.constant('update' as const), body: fc.integer({ min: 0, max: BODIES.length - 1 }) }),
  fc.constant({ kind: 'delete' as const }),
  fc.constant({ kind: 'archive' as const }),
  fc.constant({ kind: 'restore' as const }),
  fc.constant({ kind: 'softdelete' as const }),
  fc.record({ kind: fc.constant('grant' as const), principal: fc.constantFrom(...PRINCIPALS) }),
  fc.record({ kind: fc.constant('revoke' as const), principal: fc.constantFrom(...PRINCIPALS) }),
);

interface OutboxEvent {
  id: string;
  operation: 'upsert' | 'delete' | 'acl';
  payload: Record<string, unknown> & { document_id: string; body?: string; model?: { name: string; version: number } };
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
    sink = await createSink(config);
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

  async function toMessage(tenant: string, e: OutboxEvent, offset: number): Promise<InMessage | undefined> {
    const key = `${tenant}:${e.payload.document_id}`;
    if (e.operation !== 'upsert') {
      // The priority lane's value is the outbox payload text as it is.
      return {
        topic: 'vecsync.outbox.priority',
        partition: 0,
        offset: String(offset),
        key,
        value: Buffer.from(JSON.stringify(e.payload)),
        headers: {},
        timestamp: Date.now(),
      };
    }
    // An upsert becomes the embedder's chunk record (chunks of its body, computed once).
    if (modelKey(e.payload.model!.name, e.payload.model!.version) !== index.modelKey) return undefined;
    const body = BODIES.indexOf(e.payload.body as (typeof BODIES)[number]);
    const chunks = chunksOf.get(body)!;
    const p = e.payload as unknown as {
      version: number;
      acl_version: number;
      acl: string[];
      title: string | null;
      content_hash: string;
    };
    const record: DocumentChunks = {
      tenant_id: tenant,
      document_id: e.payload.document_id,
      document_version: p.version,
      acl_version: p.acl_version,
      acl: p.acl,
      chunk_count: chunks.length,
      model_key: index.modelKey,
      title: p.title,
      metadata: {},
      content_hash: p.content_hash,
      created_at: new Date().toISOString(),
      outbox_id: Number(e.id),
      chunks,
    };
    return {
      topic: 'chunks',
      partition: 0,
      offset: String(offset),
      key,
      value: await codec.encode(record),
      headers: {},
      timestamp: Date.now(),
    };
  }

  /** Runs a document's history through the real triggers; statements that fail (no such row, duplicate key) change nothing. */
  async function play(tenant: string, doc: string, pre: PreState, ops: DocOp[]): Promise<void> {
    await setUp(source, tenant, doc, pre);
    for (const op of ops) {
      const s = statementOf(tenant, doc, op);
      await source.query(s.sql, s.params).catch((error: { code?: string }) => {
        if (error.code !== '23505') throw error;
      });
    }
  }

  test(`${RUNS} random SQL histories, delivered in any order, end in the source's final state`, async () => {
    await fc
      .assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              pre: fc.constantFrom(...PRE_STATES),
              ops: fc.array(opArb, { minLength: 1, maxLength: 8 }),
            }),
            { minLength: 1, maxLength: 3 },
          ),
          fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 10 }),
          async (histories, randomness, batchSizes) => {
            const tenant = `prop_${uniqueId('p')}`;
            const docs = histories.map((_, i) => `d${i}`);
            await Promise.all(histories.map((h, i) => play(tenant, docs[i]!, h.pre, h.ops)));
            const outbox = await source.query<OutboxEvent>(
              `SELECT id, operation, payload FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 ORDER BY id`,
              [tenant],
            );
            // Every event once, some twice, all in a random order across lanes.
            const emitted = outbox.rows.flatMap((e) => (randomness.next().value < 0.3 ? [e, e] : [e]));
            const order = emitted.map((e) => ({ e, r: randomness.next().value as number })).sort((a, b) => a.r - b.r);
            const messages = (await Promise.all(order.map(({ e }, i) => toMessage(tenant, e, i)))).filter(
              (m): m is InMessage => m !== undefined,
            );
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
            for (const doc of docs) {
              const truth = await sourceState(source, tenant, doc);
              const chunks = stored.filter((c) => c.document_id === doc);
              if (!(truth.exists && truth.status === 'active')) {
                assert.deepEqual(chunks, [], `${doc} is not searchable in the source: no chunk may remain`);
                continue;
              }
              const body = BODIES.indexOf(
                (
                  await source.query<{ body: string }>(
                    'SELECT body FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2',
                    [tenant, doc],
                  )
                ).rows[0]!.body as (typeof BODIES)[number],
              );
              const expected = chunksOf.get(body)!;
              assert.deepEqual(
                chunks.map((c) => [c.chunk_index, c.document_version, c.content_hash]),
                expected.map((c) => [c.chunk_index, truth.version, c.content_hash]),
                `${doc} content is v${truth.version}`,
              );
              for (const c of chunks) {
                assert.deepEqual([...c.acl].sort(), truth.acl, `${doc} ACL is the newest (v${truth.aclVersion})`);
                assert.equal(c.acl_version, truth.aclVersion);
              }
            }
          },
        ),
        {
          numRuns: RUNS,
          // To replay a failure: the seed and path fast-check printed.
          ...(process.env.VECSYNC_PROPERTY_SEED
            ? { seed: Number(process.env.VECSYNC_PROPERTY_SEED), path: process.env.VECSYNC_PROPERTY_PATH }
            : {}),
        },
      )
      .catch((error: unknown) => {
        // fast-check keeps the failing assertion as the cause; show it.
        const cause = (error as { cause?: unknown }).cause;
        throw new Error(`${(error as Error).message}\n${cause instanceof Error ? cause.message : String(cause)}`);
      });
  });
});
