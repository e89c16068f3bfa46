/**
 * The Pinecone sink against the local contract server (test/support/pinecone-server.ts), whose
 * writes become visible only after a delay, as Pinecone's do: the conformance suite, then what
 * only Pinecone needs (request limits, rate limits, error classes, index resolution).
 *
 * A live test against a real index runs when PINECONE_API_KEY and VECSYNC_PINECONE_HOST are set;
 * otherwise it is reported as skipped with the reason (it needs a SaaS credential).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Pinecone } from '@pinecone-database/pinecone';
import { loadConfig } from '../../services/config/index.ts';
import {
  ConfigError,
  CredentialsError,
  isPoison,
  isRetriable,
  PoisonMessageError,
  RateLimitedError,
  RetriableError,
} from '../../services/domain/errors.ts';
import type { PineconeOptions } from '../../services/adapters/sinks/pinecone/config.ts';
import { createPineconeSink } from '../../services/adapters/sinks/pinecone/sink.ts';
import { parseIndexTargets } from '../../services/adapters/sinks/pinecone/targets.ts';
import type { DocumentWrite, IndexSpec, ItemResult, Sink } from '../../services/adapters/sinks/types.ts';
import {
  startPineconeControlPlane,
  startPineconeServer,
  type PineconeIndexServer,
} from '../support/pinecone-server.ts';
import { waitFor } from '../support/wait.ts';
import { angled, assertAllOk, doc, runSinkConformance, runSuffix, uniqueIndexes, uniqueTenant } from './conformance.ts';

const VISIBILITY_DELAY_MS = 150;
const root = { sink: { name: 'main' } };

/** Fast request retries under test; the policy is the same. */
const FAST: Partial<PineconeOptions> = { retryInitialMs: 5, retryMaxMs: 200 };

function sinkFor(hosts: Record<string, string>, active: string, overrides: Partial<PineconeOptions> = {}): Sink {
  const host = Object.entries(hosts)
    .map(([model, h]) => (model === active ? h : `${model}=${h}`))
    .join(',');
  return createPineconeSink(root, {
    overrides: {
      apiKey: 'test',
      targets: parseIndexTargets({ activeModelKey: active, index: 'vecsync', host }),
      ...FAST,
      ...overrides,
    },
  });
}

const servers: { close(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(dimension: number, visibilityDelayMs = VISIBILITY_DELAY_MS): Promise<PineconeIndexServer> {
  const s = await startPineconeServer({ dimension, visibilityDelayMs });
  servers.push(s);
  return s;
}

const byId = (results: ItemResult[]) => results.map((r) => (r.ok ? 'ok' : (r.error as Error).constructor.name));

// ---- conformance -------------------------------------------------------------------------------

const conformanceIndexes = uniqueIndexes(16, 'pctest');
runSinkConformance(
  'pinecone (contract server, writes visible after 150 ms)',
  async () => {
    const [A, B] = conformanceIndexes;
    const a = await server(A.dimensions);
    const b = await server(B.dimensions);
    // A page of 2 ids makes every listing cross several pages.
    return sinkFor({ [A.modelKey]: a.host, [B.modelKey]: b.host }, A.modelKey, { listPageSize: 2 });
  },
  { indexes: conformanceIndexes, eventually: { timeoutMs: 10_000 } },
);

// ---- Pinecone specifics ------------------------------------------------------------------------

describe('pinecone sink', () => {
  const model = (dimensions: number): IndexSpec => ({ modelKey: `pc-${runSuffix()}.v1`, dimensions });

  it('keeps every upsert within 1,000 vectors and 2 MB, measured on the JSON body', async () => {
    for (const dimensions of [8, 768]) {
      const index = model(dimensions);
      const pinecone = await server(dimensions, 0);
      const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
      const tenant = uniqueTenant('batch');
      // 2,500 vectors in 5 documents of 500 chunks.
      const writes = Array.from({ length: 5 }, (_, d) => ({
        ...doc(index, tenant, `d${d}`, { chunkCount: 500 }),
        previousChunkCount: 0,
      }));
      assertAllOk(await sink.writeDocuments(index, writes), 5);
      const upserts = pinecone.requests.filter((r) => r.route === '/vectors/upsert');
      assert.equal(
        upserts.reduce((n, r) => n + (r.vectors ?? 0), 0),
        2500,
        `${dimensions}d: every vector sent once`,
      );
      assert.equal(pinecone.records(tenant).length, 2500);
      const largest = pinecone.largest('/vectors/upsert');
      assert.ok(largest.vectors <= 1000, `${dimensions}d: ${largest.vectors} vectors in one request`);
      assert.ok(largest.bytes <= 2_000_000, `${dimensions}d: ${largest.bytes} bytes in one request`);
      assert.ok(upserts.every((r) => r.status === 200));
      if (dimensions === 8) assert.equal(upserts.length, 3, 'the count limit binds: 1000 + 1000 + 500');
      else {
        assert.ok(upserts.length > 3, 'the size limit binds');
        // Packed by measured size, not by a cautious fixed count: the fullest request is close to 2 MB.
        assert.ok(largest.bytes > 1_900_000, `fullest request ${largest.bytes} bytes`);
      }
      await sink.close();
    }
  });

  it('the size limit is exact: a smaller limit is never exceeded and requests are filled to it', async () => {
    const index = model(64);
    const pinecone = await server(64, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { maxUpsertBytes: 50_000 });
    const tenant = uniqueTenant('exact');
    assertAllOk(await sink.writeDocuments(index, [doc(index, tenant, 'd', { chunkCount: 200 })]), 1);
    const sizes = pinecone.requests.filter((r) => r.route === '/vectors/upsert').map((r) => r.bytes);
    assert.ok(
      sizes.every((b) => b <= 50_000),
      `sizes ${sizes.join(',')}`,
    );
    assert.ok(Math.max(...sizes) > 48_000, `sizes ${sizes.join(',')}`);
    await sink.close();
  });

  it('deletes and fetches at most 1,000 ids per request', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { maxChunks: 3000 });
    const tenant = uniqueTenant('ids');
    assertAllOk(await sink.writeDocuments(index, [doc(index, tenant, 'big', { chunkCount: 2500 })]), 1);
    assert.equal((await sink.inspect(index, tenant, 'big')).length, 2500);
    assertAllOk(await sink.deleteDocuments([index], [{ tenantId: tenant, documentId: 'big' }]), 1);
    assert.equal(pinecone.records(tenant).length, 0);
    for (const route of ['/vectors/delete', '/vectors/fetch']) {
      const largest = pinecone.largest(route);
      assert.ok(largest.ids > 0 && largest.ids <= 1000, `${route}: ${largest.ids} ids in one request`);
    }
    assert.ok(pinecone.requests.every((r) => r.status === 200));
    await sink.close();
  });

  it('a shrink with the ledger count deletes exactly the dropped ids, without listing', async () => {
    const index = model(4);
    const pinecone = await server(4);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    const tenant = uniqueTenant('shrinkexact');
    const write = (version: number, chunkCount: number, previousChunkCount: number): DocumentWrite => ({
      ...doc(index, tenant, 'd', { version, chunkCount }),
      previousChunkCount,
    });
    assertAllOk(await sink.writeDocuments(index, [write(1, 5, 0)]), 1);
    const before = pinecone.requests.length;
    // Right away: chunks #2..#4 are not visible to `list` yet, and still go.
    assertAllOk(await sink.writeDocuments(index, [write(2, 2, 5)]), 1);
    const sent = pinecone.requests.slice(before);
    // One round: the upsert of #0..#1 and the delete of #2..#4 (disjoint ids) go out together,
    // between the fetches of the tombstone marker before and after (the fence re-check).
    assert.deepEqual(sent.map((r) => `${r.route} ${r.ids ?? r.vectors}`).sort(), [
      '/vectors/delete 3',
      '/vectors/fetch 1',
      '/vectors/fetch 1',
      '/vectors/upsert 2',
    ]);
    assert.deepEqual(
      pinecone.records(tenant).map((r) => r.id),
      [`${tenant}:d#0`, `${tenant}:d#1`],
    );
    await sink.close();
  });

  it('never touches another document whose id starts with this one (t:a# vs t:a#1#)', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { maxChunks: 2 });
    const tenant = uniqueTenant('prefix');
    assertAllOk(
      await sink.writeDocuments(index, [
        doc(index, tenant, 'a', { chunkCount: 2 }),
        doc(index, tenant, 'a#1', { chunkCount: 3 }),
      ]),
      2,
    );
    assert.deepEqual(
      (await sink.inspect(index, tenant, 'a')).map((c) => c.document_id),
      ['a', 'a'],
    );
    // A shrink and a delete of `a` list `t:a#`, which also shows `t:a#1#0..2`.
    assertAllOk(await sink.writeDocuments(index, [doc(index, tenant, 'a', { version: 2, chunkCount: 1 })]), 1);
    assertAllOk(await sink.deleteDocuments([index], [{ tenantId: tenant, documentId: 'a' }]), 1);
    assert.deepEqual(
      pinecone.records(tenant).map((r) => r.id),
      [`${tenant}:a#1#0`, `${tenant}:a#1#1`, `${tenant}:a#1#2`],
    );
    await sink.close();
  });

  it('stores only the allowed metadata, in Pinecone types: nulls dropped, nested values as JSON', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    const tenant = uniqueTenant('meta');
    const write = doc(index, tenant, 'd', {
      chunkCount: 1,
      metadata: { category: 'x', lang: null, tags: ['a', 1, null, true], source: { url: 'u' }, acl: 'spoof' },
      acl: { principals: ['alice', 'group:eng'], aclVersion: 7 },
    });
    assertAllOk(await sink.writeDocuments(index, [write]), 1);
    const [stored] = pinecone.records(tenant);
    assert.deepEqual(stored?.metadata, {
      category: 'x',
      tags: ['a', '1', 'true'],
      source: '{"url":"u"}',
      document_id: 'd',
      chunk_index: 0,
      document_version: 1,
      acl_version: 7,
      acl: ['alice', 'group:eng'],
      model: index.modelKey,
      content_hash: write.chunks[0]!.contentHash,
    });
    // Too large for Pinecone (40 KB per record): poison, never sent.
    const big = doc(index, tenant, 'big', { chunkCount: 1, metadata: { category: 'x'.repeat(41_000) } });
    const [result] = await sink.writeDocuments(index, [big]);
    assert.ok(result && !result.ok && isPoison(result.error));
    assert.match((result.error as Error).message, /^metadata_too_large/);
    await sink.close();
  });

  it('ACL changes are per-record updates of acl and acl_version, paced per namespace', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { updatesPerSecond: 100 });
    const tenant = uniqueTenant('aclpace');
    assertAllOk(await sink.writeDocuments(index, [doc(index, tenant, 'd', { chunkCount: 40 })]), 1);
    const before = pinecone.records(tenant);
    const from = pinecone.requests.length;
    const started = performance.now();
    assertAllOk(
      await sink.setAcls(
        [index],
        [{ tenantId: tenant, documentId: 'd', principals: ['bob'], aclVersion: 2, chunkCount: 40 }],
      ),
      1,
    );
    const elapsed = performance.now() - started;
    const updates = pinecone.requests.slice(from);
    assert.equal(updates.length, 40);
    assert.ok(updates.every((r) => r.route === '/vectors/update' && r.status === 200));
    // 40 updates at 100/s per namespace: about 390 ms at least.
    assert.ok(elapsed >= 350, `paced: took ${elapsed.toFixed(0)} ms`);
    const after = pinecone.records(tenant);
    after.forEach((r, i) => {
      assert.deepEqual(r.metadata?.acl, ['bob']);
      assert.equal(r.metadata?.acl_version, 2);
      assert.deepEqual(r.values, before[i]!.values, 'values untouched');
      assert.equal(r.metadata?.content_hash, before[i]!.metadata?.content_hash);
    });
    await sink.close();
  });

  it("a revoke reaches every chunk of every model's index, whatever each model's chunk count", async () => {
    const a = model(4);
    const b = model(4);
    const sa = await server(4, 0);
    const sb = await server(4, 0);
    const sink = sinkFor({ [a.modelKey]: sa.host, [b.modelKey]: sb.host }, a.modelKey);
    const tenant = uniqueTenant('revoke-models');
    const granted = { principals: ['alice', 'mallory'], aclVersion: 1 };
    // The same document chunked by two models: 2 chunks in one index, 5 in the other.
    assertAllOk(await sink.writeDocuments(a, [doc(a, tenant, 'd', { chunkCount: 2, acl: granted })]), 1);
    assertAllOk(await sink.writeDocuments(b, [doc(b, tenant, 'd', { chunkCount: 5, acl: granted })]), 1);
    // What the propagator sends for one document in both models (plan.ts + mergeAclWrites): the
    // first model's count as `chunkCount`, each model's own in `chunkCounts`.
    const results = await sink.setAcls(
      [a, b],
      [
        {
          tenantId: tenant,
          documentId: 'd',
          principals: ['alice'],
          aclVersion: 2,
          chunkCount: 2,
          chunkCounts: { [a.modelKey]: 2, [b.modelKey]: 5 },
        },
      ],
    );
    assertAllOk(results, 1);
    for (const index of [a, b]) {
      const stored = await sink.inspect(index, tenant, 'd');
      assert.equal(stored.length, index === a ? 2 : 5);
      for (const chunk of stored)
        assert.deepEqual([chunk.acl, chunk.acl_version], [['alice'], 2], `${index.modelKey}#${chunk.chunk_index}`);
      const hits = await sink.search({
        modelKey: index.modelKey,
        tenantId: tenant,
        principal: 'mallory',
        vector: angled(4, 0),
        topK: 10,
      });
      assert.deepEqual(hits, [], `mallory still finds chunks in ${index.modelKey}`);
    }
    // Exactly one update per chunk and index: 2 + 5.
    assert.equal(sa.requests.filter((r) => r.route === '/vectors/update').length, 2);
    assert.equal(sb.requests.filter((r) => r.route === '/vectors/update').length, 5);
    await sink.close();
  });

  it('fence re-check: a delete that overtakes a write in flight stays a delete; a later older write is not sent', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const writerSink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    const propagatorSink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    const tenant = uniqueTenant('overtaken');
    // The writer's upsert is slow (it lost its ledger lock meanwhile); the delete runs in between.
    pinecone.failNext(1, { delayMs: 800, routes: ['/vectors/upsert'] });
    const inFlight = writerSink.writeDocuments(index, [doc(index, tenant, 'd', { version: 1, chunkCount: 3 })]);
    await waitFor(() => pinecone.requests.some((r) => r.route === '/vectors/upsert'), { timeoutMs: 5000 });
    assertAllOk(
      await propagatorSink.deleteDocuments([index], [{ tenantId: tenant, documentId: 'd', version: 2, aclVersion: 1 }]),
      1,
    );
    const results = await inFlight;
    assert.deepEqual(results, [{ ok: true, fenced: 'tombstoned' }]);
    assert.deepEqual(await writerSink.inspect(index, tenant), []);
    assert.deepEqual(
      await writerSink.search({
        modelKey: index.modelKey,
        tenantId: tenant,
        principal: 'alice',
        vector: angled(4, 0),
        topK: 5,
      }),
      [],
    );
    // A write of the deleted version or older that starts now is refused before anything is sent.
    const before = pinecone.requests.length;
    assert.deepEqual(await writerSink.writeDocuments(index, [doc(index, tenant, 'd', { version: 2 })]), [
      { ok: true, fenced: 'tombstoned' },
    ]);
    assert.deepEqual(
      pinecone.requests.slice(before).map((r) => r.route),
      ['/vectors/fetch'],
    );
    // Re-created above the tombstone: written.
    assertAllOk(await writerSink.writeDocuments(index, [doc(index, tenant, 'd', { version: 3, chunkCount: 2 })]), 1);
    assert.equal((await writerSink.inspect(index, tenant, 'd')).length, 2);
    await writerSink.close();
    await propagatorSink.close();
  });

  it('an ACL update Pinecone refuses (record over 40 KB) fails closed: empty ACL, poison acl_too_large; the others apply', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    const tenant = uniqueTenant('acl400');
    assertAllOk(
      await sink.writeDocuments(index, [
        doc(index, tenant, 'fat', {
          chunkCount: 2,
          metadata: { category: 'x'.repeat(30_000) },
          acl: { principals: ['old-wide', 'alice'], aclVersion: 1 },
        }),
        doc(index, tenant, 'thin', { chunkCount: 1 }),
      ]),
      2,
    );
    const principals = Array.from({ length: 1000 }, (_, i) => `group:${i.toString().padStart(8, '0')}`);
    const results = await sink.setAcls(
      [index],
      [
        { tenantId: tenant, documentId: 'fat', principals, aclVersion: 2, chunkCount: 2 },
        { tenantId: tenant, documentId: 'thin', principals, aclVersion: 2, chunkCount: 1 },
      ],
    );
    assert.deepEqual(byId(results), ['PoisonMessageError', 'ok']);
    const error = (results[0] as { error: PoisonMessageError }).error;
    assert.equal(error.reason, 'acl_too_large');
    assert.match(String((error.cause as Error).message), /^sink_rejected: .*40960/);
    assert.ok(pinecone.requests.some((r) => r.route === '/vectors/update' && r.status === 400));
    // Fail closed: the old, wider ACL is gone from every chunk; nobody finds the document.
    const stored = await sink.inspect(index, tenant, 'fat');
    assert.deepEqual(
      stored.map((c) => [c.chunk_index, c.acl, c.acl_version]),
      [
        [0, [], 2],
        [1, [], 2],
      ],
    );
    for (const principal of ['old-wide', 'alice', principals[0]!]) {
      const hits = await sink.search({
        modelKey: index.modelKey,
        tenantId: tenant,
        principal,
        vector: angled(4, 0),
        topK: 5,
      });
      assert.deepEqual(
        hits.map((h) => h.documentId).filter((d) => d === 'fat'),
        [],
        principal,
      );
    }
    assert.equal((await sink.inspect(index, tenant, 'thin'))[0]?.acl.length, 1000);
    await sink.close();
  });

  it('an ACL too large for any record (50,000 principals) fails closed, in a content write and an ACL change', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    const tenant = uniqueTenant('acl50k');
    const huge = Array.from({ length: 50_000 }, (_, i) => `user:${i}`);
    assertAllOk(
      await sink.writeDocuments(index, [
        doc(index, tenant, 'd', { chunkCount: 3, acl: { principals: ['old-wide'], aclVersion: 1 } }),
      ]),
      1,
    );
    // A grant to 50,000 principals: the store cannot hold it, so the document leaves search.
    const acl = await sink.setAcls(
      [index],
      [{ tenantId: tenant, documentId: 'd', principals: huge, aclVersion: 2, chunkCount: 3 }],
    );
    assert.equal((acl[0] as { error: PoisonMessageError }).error.reason, 'acl_too_large');
    assert.ok(
      !pinecone.requests.some((r) => r.route === '/vectors/update' && r.status === 400),
      'refused before sending: no request carries 50,000 principals',
    );
    assert.deepEqual(
      (await sink.inspect(index, tenant, 'd')).map((c) => [c.acl, c.acl_version]),
      [
        [[], 2],
        [[], 2],
        [[], 2],
      ],
    );
    // A new version whose ACL is still 50,000 principals: written, found by nobody.
    const write = await sink.writeDocuments(index, [
      doc(index, tenant, 'd', { version: 2, chunkCount: 2, acl: { principals: huge, aclVersion: 3 } }),
    ]);
    assert.equal((write[0] as { error: PoisonMessageError }).error.reason, 'acl_too_large');
    assert.deepEqual(
      (await sink.inspect(index, tenant, 'd')).map((c) => [c.document_version, c.acl, c.acl_version]),
      [
        [2, [], 3],
        [2, [], 3],
      ],
    );
    const hits = await sink.search({
      modelKey: index.modelKey,
      tenantId: tenant,
      principal: 'old-wide',
      vector: angled(4, 0),
      topK: 5,
    });
    assert.deepEqual(hits, []);
    await sink.close();
  });

  it('a 429 storm is retried and drains: every write lands, none is lost', async () => {
    const index = model(8);
    const pinecone = await server(8);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { retryMaxAttempts: 20 });
    const tenant = uniqueTenant('storm');
    pinecone.failRate(0.5, { status: 429, retryAfterSeconds: 0 });
    const writes = Array.from({ length: 20 }, (_, d) => doc(index, tenant, `d${d}`, { chunkCount: 3 + (d % 4) }));
    assertAllOk(await sink.writeDocuments(index, writes), writes.length);
    assertAllOk(
      await sink.setAcls(
        [index],
        writes.map((w) => ({ ...w, principals: ['bob'], aclVersion: 2 })),
      ),
      writes.length,
    );
    assertAllOk(
      await sink.deleteDocuments(
        [index],
        writes.slice(0, 5).map((w) => ({ tenantId: tenant, documentId: w.documentId })),
      ),
      5,
    );
    const storm = pinecone.requests.filter((r) => r.status === 429).length;
    assert.ok(storm > 10, `${storm} requests answered 429`);
    pinecone.clearFaults();
    const stored = await waitFor(async () => {
      const chunks = await sink.inspect(index, tenant);
      return chunks.length === writes.slice(5).reduce((n, w) => n + w.chunkCount, 0) ? chunks : undefined;
    });
    assert.ok(stored.every((c) => c.acl_version === 2 && c.acl[0] === 'bob'));
    assert.deepEqual(
      [...new Set(stored.map((c) => c.document_id))].sort(),
      writes
        .slice(5)
        .map((w) => w.documentId)
        .sort(),
    );
    await sink.close();
  });

  it('honours Retry-After; a wait beyond the request budget surfaces as RateLimitedError with it', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { retryMaxMs: 2000 });
    await sink.ensureIndex(index);
    const tenant = uniqueTenant('retryafter');
    pinecone.failNext(1, { status: 429, retryAfterSeconds: 1 });
    const started = performance.now();
    assertAllOk(await sink.writeDocuments(index, [doc(index, tenant, 'd', { chunkCount: 1 })]), 1);
    assert.ok(performance.now() - started >= 950, 'waited the second Pinecone asked for');

    pinecone.failRate(1, { status: 429, retryAfterSeconds: 30 });
    const [result] = await sink.writeDocuments(index, [doc(index, tenant, 'e', { chunkCount: 1 })]);
    pinecone.clearFaults();
    assert.ok(result && !result.ok);
    assert.ok(result.error instanceof RateLimitedError, String(result.error));
    assert.equal(result.error.retryAfterMs, 30_000);
    await sink.close();
  });

  it('classifies failures: 5xx, timeouts and refused connections retriable; 401 and 403 credentials', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, {
      retryMaxAttempts: 2,
      requestTimeoutMs: 200,
    });
    await sink.ensureIndex(index);
    const tenant = uniqueTenant('classes');
    const write = () => sink.writeDocuments(index, [doc(index, tenant, 'd', { chunkCount: 1 })]);

    for (const status of [500, 502, 503, 504]) {
      pinecone.failRate(1, { status });
      const [r] = await write();
      pinecone.clearFaults();
      assert.ok(r && !r.ok && r.error instanceof RetriableError && isRetriable(r.error), `${status}: ${String(r)}`);
      assert.match((r.error as Error).message, new RegExp(`answered ${status}`));
    }
    pinecone.failRate(1, { delayMs: 1000 });
    const [slow] = await write();
    pinecone.clearFaults();
    assert.ok(slow && !slow.ok && isRetriable(slow.error), 'timeout');
    assert.match((slow.error as Error).message, /no answer within 200 ms/);

    // A refused key fails the item retriably (the consumer pauses), never as poison.
    const refused = (reason: string) => (e: unknown) =>
      e instanceof CredentialsError &&
      e.dependency === 'pinecone' &&
      e.reason === reason &&
      /PINECONE_API_KEY/.test(e.message) &&
      !/wrong/.test(e.message);
    pinecone.failNext(1, { status: 403 });
    const [forbidden] = await write();
    assert.ok(forbidden && !forbidden.ok && refused('forbidden')(forbidden.error), String(forbidden));
    assertAllOk(await write(), 1);

    const wrongKey = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey, { apiKey: 'wrong' });
    await assert.rejects(
      wrongKey.healthCheck(),
      (e: unknown) => refused('unauthorized')(e) && /401/.test((e as Error).message),
    );
    const [unauthorized] = await wrongKey.writeDocuments(index, [doc(index, tenant, 'd', { chunkCount: 1 })]);
    assert.ok(unauthorized && !unauthorized.ok && refused('unauthorized')(unauthorized.error), String(unauthorized));
    await assert.rejects(
      wrongKey.search({ modelKey: index.modelKey, tenantId: tenant, principal: 'p', vector: angled(4, 0), topK: 1 }),
      refused('unauthorized'),
    );

    const closed = await server(4, 0);
    const host = closed.host;
    await closed.close();
    const down = sinkFor({ [index.modelKey]: host }, index.modelKey, { retryMaxAttempts: 2 });
    await assert.rejects(down.healthCheck(), RetriableError);
    const deletes = await down.deleteDocuments([index], [{ tenantId: tenant, documentId: 'd' }]);
    assert.ok(deletes[0] && !deletes[0].ok && isRetriable(deletes[0].error), 'refused connection is retriable');
    await assert.rejects(down.listTenants(index), RetriableError);
    await Promise.all([sink.close(), wrongKey.close(), down.close()]);
  });

  it('refuses an index of other dimensions, and a model without a host in host mode', async () => {
    const index = model(4);
    const pinecone = await server(4, 0);
    const sink = sinkFor({ [index.modelKey]: pinecone.host }, index.modelKey);
    await assert.rejects(
      sink.ensureIndex({ ...index, dimensions: 5 }),
      (e: unknown) => e instanceof ConfigError && /4 dimensions but model .* has 5/.test(e.message),
    );
    await assert.rejects(
      sink.ensureIndex({ modelKey: 'other.v2', dimensions: 4 }),
      (e: unknown) => e instanceof ConfigError && /VECSYNC_PINECONE_HOST/.test(e.message),
    );
    await assert.rejects(
      sink.search({ modelKey: index.modelKey, tenantId: 't', principal: 'p', vector: angled(5, 0), topK: 1 }),
      /dimensions/,
    );
    await assert.rejects(
      sink.search({ modelKey: index.modelKey, tenantId: 't', principal: 'p', vector: angled(4, 0), topK: 0 }),
      ConfigError,
    );
    await sink.close();
  });

  it('host mode never calls the control plane; name mode resolves and creates indexes there', async () => {
    const control = await startPineconeControlPlane();
    servers.push(control);
    const active = `pcname-${runSuffix()}.v1`;
    const preexisting = await control.createIndex('vecsync', 4);

    // Host mode, with a control plane configured: untouched.
    const hosted = sinkFor({ [active]: preexisting.host }, active, { controllerHostUrl: control.host });
    await hosted.healthCheck();
    await hosted.ensureIndex({ modelKey: active, dimensions: 4 });
    assertAllOk(
      await hosted.writeDocuments({ modelKey: active, dimensions: 4 }, [
        doc({ modelKey: active, dimensions: 4 }, 't', 'd'),
      ]),
      1,
    );
    assert.equal(control.requests.length, 0, 'host mode: no control plane request');

    // Name mode: the active model's index by name, a second model's by derived name, created.
    const named = createPineconeSink(root, {
      overrides: {
        apiKey: 'test',
        targets: parseIndexTargets({ activeModelKey: active, index: 'vecsync', host: '' }),
        controllerHostUrl: control.host,
        ...FAST,
      },
    });
    await named.healthCheck();
    const v2 = { modelKey: 'hashing-384.v2', dimensions: 6 };
    await named.ensureIndex({ modelKey: active, dimensions: 4 });
    assert.deepEqual(await named.listTenants(v2), [], 'a read never creates');
    await named.ensureIndex(v2);
    const created = control.indexes.get('vecsync-hashing-384-v2');
    assert.equal(created?.dimension, 6);
    assertAllOk(await named.writeDocuments(v2, [doc(v2, 't', 'd', { chunkCount: 2 })]), 1);
    assert.equal(created?.records('t').length, 2);
    assert.deepEqual(
      control.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
      [
        'GET /indexes/vecsync 200',
        'GET /indexes/vecsync 200',
        'GET /indexes/vecsync-hashing-384-v2 404',
        'GET /indexes/vecsync-hashing-384-v2 404',
        'POST /indexes 201',
        'GET /indexes/vecsync-hashing-384-v2 200',
        'GET /indexes/vecsync-hashing-384-v2 200',
      ],
    );
    await Promise.all([hosted.close(), named.close()]);
  });
});

// ---- live --------------------------------------------------------------------------------------

const live = loadConfig();
const liveReason =
  live.sink.pinecone.apiKey === '' || live.sink.pinecone.host === ''
    ? 'needs a real Pinecone index: set PINECONE_API_KEY and VECSYNC_PINECONE_HOST (an index host, cosine) to run it'
    : undefined;

describe('pinecone sink, live', () => {
  it(
    'writes, searches with ACL filtering, changes an ACL, shrinks and deletes on a real index',
    { skip: liveReason ?? false, timeout: 300_000 },
    async () => {
      const probe = new Pinecone({ apiKey: live.sink.pinecone.apiKey }).index({ host: live.sink.pinecone.host });
      const dimensions = (await probe.describeIndexStats()).dimension ?? 0;
      assert.ok(dimensions > 0, 'the index reports its dimension');
      const index: IndexSpec = { modelKey: `${live.embedder.model}.v${live.embedder.version}`, dimensions };
      const sink = createPineconeSink(
        { ...live, limits: { maxChunks: 16 } },
        {
          overrides: {
            targets: parseIndexTargets({
              activeModelKey: index.modelKey,
              index: 'vecsync',
              host: live.sink.pinecone.host,
            }),
          },
        },
      );
      const tenant = uniqueTenant('live');
      const eventually = <T>(fn: () => Promise<T | undefined>, what: string) =>
        waitFor(fn, { timeoutMs: 120_000, intervalMs: 1000, description: what });
      try {
        await sink.healthCheck();
        await sink.ensureIndex(index);
        const writes = [
          doc(index, tenant, 'open', {
            chunkCount: 3,
            acl: { principals: ['alice', 'bob'], aclVersion: 1 },
            embedding: (i) => angled(dimensions, 0.1 * i),
          }),
          doc(index, tenant, 'secret', {
            chunkCount: 2,
            acl: { principals: ['bob'], aclVersion: 1 },
            embedding: (i) => angled(dimensions, 0.05 * i),
          }),
        ];
        assertAllOk(await sink.writeDocuments(index, writes), 2);
        await eventually(
          async () => ((await sink.inspect(index, tenant)).length === 5 ? true : undefined),
          'writes visible',
        );
        const search = (principal: string) =>
          sink.search({
            modelKey: index.modelKey,
            tenantId: tenant,
            principal,
            vector: angled(dimensions, 0),
            topK: 10,
          });
        await eventually(async () => ((await search('alice')).length === 3 ? true : undefined), 'alice sees open only');
        assert.ok((await search('alice')).every((h) => h.documentId === 'open'));

        assertAllOk(
          await sink.setAcls(
            [index],
            [{ tenantId: tenant, documentId: 'open', principals: ['carol'], aclVersion: 2, chunkCount: 3 }],
          ),
          1,
        );
        await eventually(async () => ((await search('alice')).length === 0 ? true : undefined), 'revoke visible');

        assertAllOk(
          await sink.writeDocuments(index, [
            {
              ...doc(index, tenant, 'open', {
                version: 2,
                chunkCount: 1,
                acl: { principals: ['carol'], aclVersion: 2 },
              }),
              previousChunkCount: 3,
            },
          ]),
          1,
        );
        await eventually(
          async () => ((await sink.inspect(index, tenant, 'open')).length === 1 ? true : undefined),
          'shrink visible',
        );

        assertAllOk(
          await sink.deleteDocuments(
            [index],
            writes.map((w) => ({ tenantId: tenant, documentId: w.documentId })),
          ),
          2,
        );
        await eventually(
          async () => ((await sink.inspect(index, tenant)).length === 0 ? true : undefined),
          'deletes visible',
        );
      } finally {
        await probe
          .namespace(tenant)
          .deleteAll()
          .catch(() => undefined);
        await sink.close();
      }
    },
  );
});
