/**
 * The sink conformance suite: what every sink (pgvector, Pinecone, ...) must do, checked through
 * the `Sink` interface alone. A sink's test file calls `runSinkConformance` with a factory.
 *
 * The suite checks that a sink executes blind writes faithfully. Which write wins between lanes
 * (newer wins, tombstones) is decided by the ledger, not the sink, and is not tested here.
 *
 * Every case uses tenants of its own (random suffix), so cases and runs are independent on one
 * shared store; the indexes are unique to the run and the caller removes them afterwards.
 *
 * Eventually consistent stores (Pinecone) pass `eventually`: each read-and-assert step that
 * follows a write is then polled until it holds (never a fixed sleep), and a write that depends on
 * stored state (a content write that keeps the stored ACL) waits until that state is visible.
 * Without it, every step runs exactly once, right after the write.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isPoison, isRetriable } from '../../services/domain/errors.ts';
import { bucketOf } from '../../services/domain/transforms/drift.ts';
import { waitFor } from '../support/wait.ts';
import type {
  DocumentWrite,
  IndexSpec,
  ItemResult,
  Sink,
  StoredChunk,
  StoredDocument,
} from '../../services/adapters/sinks/types.ts';

export interface ConformanceOptions {
  /** Two indexes (models) unique to this run; blue/green cases write to both. */
  indexes?: [IndexSpec, IndexSpec];
  /**
   * The store is eventually consistent: poll each read-and-assert step until it holds, for at
   * most `timeoutMs`. The last failed assertion is reported at the timeout.
   */
  eventually?: { timeoutMs?: number; intervalMs?: number };
}

export function runSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** Two fresh model indexes, e.g. `conformance-1a2b3c4d-a.v1` and `...-b.v1`. */
export function uniqueIndexes(dimensions: number, prefix = 'conformance'): [IndexSpec, IndexSpec] {
  const run = runSuffix();
  return [
    { modelKey: `${prefix}-${run}-a.v1`, dimensions },
    { modelKey: `${prefix}-${run}-b.v1`, dimensions },
  ];
}

export function uniqueTenant(label: string): string {
  return `t-${label}-${runSuffix()}`;
}

// ---- vectors ---------------------------------------------------------------------------------

function seededRandom(seed: string): () => number {
  let state = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deterministic pseudo-random unit vector. */
export function randomVector(dimensions: number, seed: string): Float32Array {
  const next = seededRandom(seed);
  const v = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    v[i] = next() * 2 - 1;
    norm += (v[i] as number) ** 2;
  }
  for (let i = 0; i < dimensions; i++) v[i] = (v[i] as number) / Math.sqrt(norm);
  return v;
}

/**
 * `cos(angle)·e0 + sin(angle)·e1`: its cosine similarity to `e0` (the query used below) is
 * cos(angle), so a list of growing angles is a list of known, strictly worse matches.
 */
export function angled(dimensions: number, angle: number): Float32Array {
  const v = new Float32Array(dimensions);
  v[0] = Math.cos(angle);
  v[1] = Math.sin(angle);
  return v;
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex');

// ---- documents -------------------------------------------------------------------------------

export interface DocOptions {
  version?: number;
  chunkCount?: number;
  acl?: { principals: string[]; aclVersion: number } | null;
  /** Embedding of chunk i; default a pseudo-random vector seeded by tenant, document, version, i. */
  embedding?: (index: number) => Float32Array;
  title?: string;
  metadata?: Record<string, unknown>;
}

export function doc(index: IndexSpec, tenantId: string, documentId: string, options: DocOptions = {}): DocumentWrite {
  const version = options.version ?? 1;
  const chunkCount = options.chunkCount ?? 3;
  const chunks = Array.from({ length: chunkCount }, (_, i) => {
    const content = `${documentId} v${version} chunk ${i}`;
    return {
      index: i,
      content,
      contentHash: hash(content),
      embedding: options.embedding?.(i) ?? randomVector(index.dimensions, `${tenantId}/${documentId}/${version}/${i}`),
    };
  });
  return {
    tenantId,
    documentId,
    documentVersion: version,
    chunkCount,
    contentHash: hash(chunks.map((c) => c.content).join('\n')),
    title: options.title ?? `Title of ${documentId}`,
    metadata: options.metadata ?? { category: 'test' },
    chunks,
    acl: options.acl === undefined ? { principals: ['alice'], aclVersion: 1 } : options.acl,
  };
}

export function assertAllOk(results: ItemResult[], count: number): void {
  assert.equal(results.length, count, 'one result per item');
  results.forEach((r, i) => assert.ok(r.ok, `item ${i} failed: ${r.ok ? '' : String(r.error)}`));
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** Stored vectors are float32; compare what was written after the same rounding. */
function assertSameVector(actual: number[] | undefined, expected: Float32Array, message: string): void {
  assert.ok(actual, `${message}: no embedding returned`);
  assert.equal(actual.length, expected.length, `${message}: dimensions`);
  for (let i = 0; i < expected.length; i++) {
    assert.equal(Math.fround(actual[i] as number), expected[i], `${message}: component ${i}`);
  }
}

const sorted = (xs: string[]) => [...xs].sort();

// ---- the suite -------------------------------------------------------------------------------

export function runSinkConformance(
  name: string,
  makeSink: () => Promise<Sink>,
  options: ConformanceOptions = {},
): void {
  const [A, B] = options.indexes ?? uniqueIndexes(16);
  const dims = A.dimensions;
  const query = angled(dims, 0);
  /** Runs a read-and-assert step once, or until it holds on an eventually consistent store. */
  const settled = async (step: () => Promise<void>, what = 'the store to show the write'): Promise<void> => {
    if (!options.eventually) return step();
    await waitFor(
      async () => {
        await step();
        return true;
      },
      {
        timeoutMs: options.eventually.timeoutMs ?? 15_000,
        intervalMs: options.eventually.intervalMs ?? 50,
        description: what,
      },
    );
  };

  describe(`sink conformance: ${name}`, () => {
    let sink: Sink;

    before(async () => {
      sink = await makeSink();
      await sink.healthCheck();
      await sink.ensureIndex(A);
      await sink.ensureIndex(B);
    });

    after(async () => {
      await sink?.close();
    });

    it('ensureIndex is idempotent and a new tenant is empty', async () => {
      await sink.ensureIndex(A);
      await sink.ensureIndex(A);
      const tenant = uniqueTenant('empty');
      assert.deepEqual(await sink.inspect(A, tenant), []);
      assert.deepEqual(await collect(sink.listDocuments(A, tenant)), []);
      assert.deepEqual(
        await sink.search({ modelKey: A.modelKey, tenantId: tenant, principal: 'alice', vector: query, topK: 5 }),
        [],
      );
    });

    it('writing the same documents twice leaves the store unchanged (idempotent upsert)', async () => {
      const tenant = uniqueTenant('idem');
      const writes = [doc(A, tenant, 'd1', { chunkCount: 3 }), doc(A, tenant, 'd2', { chunkCount: 2 })];
      assertAllOk(await sink.writeDocuments(A, writes), 2);
      let first: StoredChunk[] = [];
      let firstList: StoredDocument[] = [];
      await settled(async () => {
        first = await sink.inspect(A, tenant, undefined, { includeEmbeddings: true });
        assert.equal(first.length, 5);
        firstList = await collect(sink.listDocuments(A, tenant));
        assert.equal(firstList.length, 2);
      });
      assertAllOk(await sink.writeDocuments(A, writes), 2);
      await settled(async () => {
        assert.deepEqual(await sink.inspect(A, tenant, undefined, { includeEmbeddings: true }), first);
        assert.deepEqual(await collect(sink.listDocuments(A, tenant)), firstList);
      });

      assert.equal(first.length, 5);
      const d1 = first.filter((c) => c.document_id === 'd1');
      assert.deepEqual(
        d1.map((c) => c.chunk_index),
        [0, 1, 2],
      );
      const expected = writes[0] as DocumentWrite;
      d1.forEach((c, i) => {
        const chunk = expected.chunks[i]!;
        assert.equal(c.tenant_id, tenant);
        assert.equal(c.document_version, 1);
        assert.equal(c.acl_version, 1);
        assert.deepEqual(c.acl, ['alice']);
        assert.equal(c.model, A.modelKey);
        assert.equal(c.content_hash, chunk.contentHash);
        assertSameVector(c.embedding, chunk.embedding, `d1#${i}`);
      });
      // Without the option, no vectors (inspect --json stays small).
      assert.equal((await sink.inspect(A, tenant, 'd1'))[0]?.embedding, undefined);
    });

    it('a newer write replaces the chunks', async () => {
      const tenant = uniqueTenant('replace');
      assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 1, chunkCount: 3 })]), 1);
      const v2 = doc(A, tenant, 'd', { version: 2, chunkCount: 3 });
      assertAllOk(await sink.writeDocuments(A, [v2]), 1);
      await settled(async () => {
        const stored = await sink.inspect(A, tenant, 'd', { includeEmbeddings: true });
        assert.deepEqual(
          stored.map((c) => [c.chunk_index, c.document_version, c.content_hash]),
          v2.chunks.map((c) => [c.index, 2, c.contentHash]),
        );
        stored.forEach((c, i) => assertSameVector(c.embedding, v2.chunks[i]!.embedding, `chunk ${i}`));
        const hits = await sink.search({
          modelKey: A.modelKey,
          tenantId: tenant,
          principal: 'alice',
          vector: v2.chunks[1]!.embedding,
          topK: 1,
        });
        assert.equal(hits[0]?.chunkIndex, 1);
        assert.ok(Math.abs(hits[0].score - 1) < 1e-4, `exact match scores 1, got ${hits[0].score}`);
      });
    });

    it('a shrinking document leaves no orphan chunks', async () => {
      const tenant = uniqueTenant('shrink');
      assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 1, chunkCount: 5 })]), 1);
      assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 2, chunkCount: 2 })]), 1);
      await settled(async () => {
        assert.deepEqual(
          (await sink.inspect(A, tenant, 'd')).map((c) => [c.chunk_index, c.document_version]),
          [
            [0, 2],
            [1, 2],
          ],
        );
        const [listed] = await collect(sink.listDocuments(A, tenant));
        assert.deepEqual(listed?.chunkIndexes, [0, 1]);
      });

      // Down to nothing: an empty body leaves nothing searchable.
      assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 3, chunkCount: 0 })]), 1);
      await settled(async () => {
        assert.deepEqual(await sink.inspect(A, tenant, 'd'), []);
        assert.deepEqual(await collect(sink.listDocuments(A, tenant)), []);
        assert.deepEqual(
          await sink.search({ modelKey: A.modelKey, tenantId: tenant, principal: 'alice', vector: query, topK: 5 }),
          [],
        );
      });
    });

    it('an ACL change applies to every chunk in every index without re-embedding', async () => {
      const tenant = uniqueTenant('acl');
      const write = (index: IndexSpec) =>
        doc(index, tenant, 'd', { chunkCount: 3, embedding: (i) => angled(dims, 0.1 * i) });
      assertAllOk(await sink.writeDocuments(A, [write(A)]), 1);
      assertAllOk(await sink.writeDocuments(B, [write(B)]), 1);
      let before: StoredChunk[] = [];
      await settled(async () => {
        before = await sink.inspect(A, tenant, 'd', { includeEmbeddings: true });
        assert.equal(before.length, 3);
      });

      assertAllOk(
        await sink.setAcls(
          [A, B],
          [{ tenantId: tenant, documentId: 'd', principals: ['bob', 'carol'], aclVersion: 2, chunkCount: 3 }],
        ),
        1,
      );

      await settled(async () => {
        for (const index of [A, B]) {
          const stored = await sink.inspect(index, tenant, 'd', { includeEmbeddings: true });
          assert.equal(stored.length, 3, index.modelKey);
          for (const c of stored) {
            assert.deepEqual(sorted(c.acl), ['bob', 'carol'], index.modelKey);
            assert.equal(c.acl_version, 2, index.modelKey);
          }
        }
        const afterA = await sink.inspect(A, tenant, 'd', { includeEmbeddings: true });
        const untouched = (cs: StoredChunk[]) =>
          cs.map((c) => [c.chunk_index, c.document_version, c.content_hash, c.embedding, c.model]);
        assert.deepEqual(untouched(afterA), untouched(before), 'content, hashes and embeddings unchanged');

        const search = (principal: string) =>
          sink.search({ modelKey: A.modelKey, tenantId: tenant, principal, vector: query, topK: 5 });
        assert.deepEqual(await search('alice'), [], 'a revoked principal sees nothing');
        assert.deepEqual(
          (await search('bob')).map((h) => h.chunkIndex),
          [0, 1, 2],
        );
        const [listed] = await collect(sink.listDocuments(A, tenant));
        assert.equal(listed?.aclVersion, 2);
        assert.deepEqual(sorted(listed?.acl ?? []), ['bob', 'carol']);
      });
    });

    it('a content write without an ACL keeps the stored one', async () => {
      const tenant = uniqueTenant('keepacl');
      assertAllOk(
        await sink.writeDocuments(A, [
          doc(A, tenant, 'd', { version: 1, acl: { principals: ['alice'], aclVersion: 4 } }),
        ]),
        1,
      );
      // The sink can only keep what it can see: wait until the stored ACL is visible.
      await settled(async () => {
        assert.deepEqual(
          (await sink.inspect(A, tenant, 'd')).map((c) => c.acl_version),
          [4, 4, 4],
        );
      });
      assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 2, acl: null })]), 1);
      await settled(async () => {
        const stored = await sink.inspect(A, tenant, 'd');
        assert.equal(stored.length, 3);
        for (const c of stored) {
          assert.equal(c.document_version, 2);
          assert.deepEqual(c.acl, ['alice']);
          assert.equal(c.acl_version, 4);
        }
        const hits = await sink.search({
          modelKey: A.modelKey,
          tenantId: tenant,
          principal: 'alice',
          vector: query,
          topK: 5,
        });
        assert.equal(hits.length, 3);
      });
    });

    it('a delete removes every chunk from every index, and the ACL', async () => {
      const tenant = uniqueTenant('delete');
      for (const index of [A, B]) {
        assertAllOk(
          await sink.writeDocuments(index, [
            doc(index, tenant, 'gone', { chunkCount: 4 }),
            doc(index, tenant, 'kept', { chunkCount: 2 }),
          ]),
          2,
        );
      }
      assertAllOk(
        await sink.deleteDocuments(
          [A, B],
          [
            { tenantId: tenant, documentId: 'gone' },
            { tenantId: tenant, documentId: 'never-written' },
          ],
        ),
        2,
      );
      await settled(async () => {
        for (const index of [A, B]) {
          assert.deepEqual(await sink.inspect(index, tenant, 'gone'), [], index.modelKey);
          assert.equal((await sink.inspect(index, tenant, 'kept')).length, 2, index.modelKey);
          assert.deepEqual(
            (await collect(sink.listDocuments(index, tenant))).map((d) => d.documentId),
            ['kept'],
          );
        }
        const hits = await sink.search({
          modelKey: A.modelKey,
          tenantId: tenant,
          principal: 'alice',
          vector: query,
          topK: 10,
        });
        assert.ok(hits.length > 0 && hits.every((h) => h.documentId === 'kept'));
      });

      // The ACL went with the document: written again without one, nobody may see it.
      assertAllOk(await sink.writeDocuments(A, [doc(A, tenant, 'gone', { version: 2, chunkCount: 1, acl: null })]), 1);
      await settled(async () => {
        const again = await sink.inspect(A, tenant, 'gone');
        assert.equal(again.length, 1);
        assert.deepEqual(again[0]?.acl, []);
        const visible = await sink.search({
          modelKey: A.modelKey,
          tenantId: tenant,
          principal: 'alice',
          vector: query,
          topK: 10,
        });
        assert.ok(visible.every((h) => h.documentId !== 'gone'));
      });

      // Deleting again is a no-op.
      assertAllOk(await sink.deleteDocuments([A, B], [{ tenantId: tenant, documentId: 'gone' }]), 1);
      assertAllOk(await sink.deleteDocuments([A, B], [{ tenantId: tenant, documentId: 'gone' }]), 1);
      await settled(async () => assert.deepEqual(await sink.inspect(A, tenant, 'gone'), []));
    });

    it('tenants are isolated: the same document id in two tenants stays separate', async () => {
      const t1 = uniqueTenant('iso1');
      const t2 = uniqueTenant('iso2');
      // t2's chunks match the query exactly; t1's are far from it. Same id, same principal.
      assertAllOk(
        await sink.writeDocuments(A, [doc(A, t1, 'shared', { chunkCount: 1, embedding: () => angled(dims, 1.2) })]),
        1,
      );
      assertAllOk(
        await sink.writeDocuments(A, [doc(A, t2, 'shared', { chunkCount: 3, embedding: () => angled(dims, 0) })]),
        1,
      );

      await settled(async () => {
        const hits1 = await sink.search({
          modelKey: A.modelKey,
          tenantId: t1,
          principal: 'alice',
          vector: query,
          topK: 10,
        });
        assert.equal(hits1.length, 1, 'only t1 chunks');
        assert.ok(Math.abs((hits1[0]?.score ?? 0) - Math.cos(1.2)) < 1e-4, 'and it is t1 chunk, not t2');
        assert.equal(
          (await sink.search({ modelKey: A.modelKey, tenantId: t2, principal: 'alice', vector: query, topK: 10 }))
            .length,
          3,
        );

        assert.ok((await sink.inspect(A, t1)).every((c) => c.tenant_id === t1));
        assert.equal((await sink.inspect(A, t1)).length, 1);
      });

      assertAllOk(
        await sink.setAcls(
          [A],
          [{ tenantId: t1, documentId: 'shared', principals: ['zed'], aclVersion: 9, chunkCount: 1 }],
        ),
        1,
      );
      await settled(async () => {
        assert.deepEqual((await sink.inspect(A, t1, 'shared'))[0]?.acl, ['zed']);
        assert.deepEqual(
          (await sink.inspect(A, t2, 'shared'))[0]?.acl,
          ['alice'],
          'an ACL change in t1 leaves t2 alone',
        );
      });

      assertAllOk(await sink.deleteDocuments([A], [{ tenantId: t1, documentId: 'shared' }]), 1);
      await settled(async () => {
        assert.deepEqual(await sink.inspect(A, t1), []);
        assert.equal((await sink.inspect(A, t2, 'shared')).length, 3, 'a delete in t1 leaves t2 alone');
      });
    });

    it('search: only what the principal may see, best first, at most topK', async () => {
      const tenant = uniqueTenant('search');
      const angles = [0.05, 0.3, 0.6, 0.9, 1.2, 1.5];
      assertAllOk(
        await sink.writeDocuments(A, [
          doc(A, tenant, 'open', {
            chunkCount: 6,
            acl: { principals: ['alice', 'bob'], aclVersion: 1 },
            embedding: (i) => angled(dims, angles[i]!),
          }),
          doc(A, tenant, 'secret', {
            chunkCount: 2,
            acl: { principals: ['bob'], aclVersion: 1 },
            embedding: (i) => angled(dims, 0.01 * i),
          }),
        ]),
        2,
      );
      const search = (principal: string, topK: number) =>
        sink.search({ modelKey: A.modelKey, tenantId: tenant, principal, vector: query, topK });

      await settled(async () => {
        const alice = await search('alice', 3);
        assert.deepEqual(
          alice.map((h) => [h.documentId, h.chunkIndex]),
          [
            ['open', 0],
            ['open', 1],
            ['open', 2],
          ],
        );
        alice.forEach((h, i) =>
          assert.ok(Math.abs(h.score - Math.cos(angles[i]!)) < 1e-4, `score ${i} is cosine similarity`),
        );

        const bob = await search('bob', 3);
        assert.deepEqual(
          bob.map((h) => [h.documentId, h.chunkIndex]),
          [
            ['secret', 0],
            ['secret', 1],
            ['open', 0],
          ],
        );
        for (let i = 1; i < bob.length; i++) assert.ok(bob[i - 1]!.score >= bob[i]!.score, 'best first');

        assert.equal((await search('alice', 100)).length, 6, 'never more than exists');
        assert.deepEqual(await search('mallory', 10), [], 'a principal in no ACL sees nothing');
        assert.deepEqual(
          await sink.search({
            modelKey: A.modelKey,
            tenantId: uniqueTenant('other'),
            principal: 'bob',
            vector: query,
            topK: 10,
          }),
          [],
          'another tenant sees nothing',
        );
      });
    });

    it('one invalid document fails alone; the rest of the batch is written', async () => {
      const tenant = uniqueTenant('partial');
      const bad = doc(A, tenant, 'bad', { chunkCount: 2 });
      bad.chunks[1]!.embedding = new Float32Array(dims + 1);
      const results = await sink.writeDocuments(A, [doc(A, tenant, 'good1'), bad, doc(A, tenant, 'good2')]);
      assert.equal(results.length, 3);
      assert.ok(results[0]?.ok && results[2]?.ok);
      const failed = results[1];
      assert.ok(failed && !failed.ok);
      assert.ok(isPoison(failed.error) && !isRetriable(failed.error), `a bad item is poison: ${String(failed.error)}`);
      await settled(async () =>
        assert.deepEqual(
          (await collect(sink.listDocuments(A, tenant))).map((d) => d.documentId),
          ['good1', 'good2'],
        ),
      );
    });

    it('the same document twice in one batch: applied in order, the later write wins', async () => {
      const tenant = uniqueTenant('twice');
      const results = await sink.writeDocuments(A, [
        doc(A, tenant, 'd', { version: 1, chunkCount: 3, acl: { principals: ['alice'], aclVersion: 1 } }),
        doc(A, tenant, 'other', { chunkCount: 1 }),
        doc(A, tenant, 'd', { version: 2, chunkCount: 2, acl: { principals: ['bob'], aclVersion: 2 } }),
      ]);
      assertAllOk(results, 3);
      await settled(async () => {
        const stored = await sink.inspect(A, tenant, 'd');
        assert.deepEqual(
          stored.map((c) => [c.chunk_index, c.document_version, c.acl_version]),
          [
            [0, 2, 2],
            [1, 2, 2],
          ],
        );
        assert.deepEqual(stored[0]?.acl, ['bob']);
      });
    });

    it('listings for the reconciler: documents in id order with versions, ACL and chunk indexes; tenants', async () => {
      const tenant = uniqueTenant('list');
      const gone = uniqueTenant('listgone');
      const ids = ['doc-2', 'a', 'doc-10', 'doc-1', 'b-7'];
      const writes = ids.map((id, i) =>
        doc(A, tenant, id, {
          version: 10 + i,
          chunkCount: 1 + (i % 3),
          acl: { principals: [`p${i}`, 'all'], aclVersion: 20 + i },
        }),
      );
      assertAllOk(await sink.writeDocuments(A, writes), ids.length);
      assertAllOk(await sink.writeDocuments(A, [doc(A, gone, 'x')]), 1);

      const expected: StoredDocument[] = writes
        .map((w) => ({
          documentId: w.documentId,
          documentVersion: w.documentVersion,
          aclVersion: w.acl!.aclVersion,
          acl: w.acl!.principals,
          chunkIndexes: w.chunks.map((c) => c.index),
        }))
        .sort((x, y) => (x.documentId < y.documentId ? -1 : 1));
      await settled(async () => {
        const listed = await collect(sink.listDocuments(A, tenant));
        assert.deepEqual(
          listed.map((d) => ({ ...d, acl: sorted(d.acl) })),
          expected.map((d) => ({ ...d, acl: sorted(d.acl) })),
        );
        const tenants = await sink.listTenants(A);
        assert.ok(tenants.includes(tenant) && tenants.includes(gone));
      });
      assertAllOk(await sink.deleteDocuments([A], [{ tenantId: gone, documentId: 'x' }]), 1);
      await settled(async () => {
        const tenants = await sink.listTenants(A);
        assert.ok(tenants.includes(tenant));
        assert.ok(!tenants.includes(gone), 'a tenant whose documents are all deleted is not listed');
        assert.ok(!(await sink.listTenants(B)).includes(tenant), 'tenants are per index');
      });
    });

    it('listings of some buckets only (the drill-down): exactly the documents whose bucketOf is wanted, in id order', async () => {
      const tenant = uniqueTenant('buckets');
      // Enough documents that each wanted bucket of 8 holds several, over several pages (the
      // pgvector suite lists 2 documents a page).
      const ids = Array.from({ length: 40 }, (_, i) => `doc-${String(i).padStart(2, '0')}`);
      assertAllOk(
        await sink.writeDocuments(
          A,
          ids.map((id, i) => doc(A, tenant, id, { chunkCount: 1 + (i % 2) })),
        ),
        ids.length,
      );
      const wanted = [1, 4, 6];
      const expected = ids.filter((id) => wanted.includes(bucketOf(tenant, id, 8)));
      assert.ok(expected.length > 0 && expected.length < ids.length);
      await settled(async () => {
        const all = await collect(sink.listDocuments(A, tenant));
        assert.equal(all.length, ids.length);
        const some = await collect(sink.listDocuments(A, tenant, { buckets: { count: 8, ids: wanted } }));
        assert.deepEqual(
          some.map((d) => d.documentId),
          expected,
        );
        assert.deepEqual(
          some,
          all.filter((d) => expected.includes(d.documentId)),
        );
      });
      assert.deepEqual(await collect(sink.listDocuments(A, tenant, { buckets: { count: 8, ids: [] } })), []);
    });
  });
}
