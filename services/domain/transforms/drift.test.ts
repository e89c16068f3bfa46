import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  aclDigest,
  bucketCount,
  bucketOf,
  classifyDocument,
  diffDrift,
  DriftTally,
  emptyCounts,
  DigestBuckets,
  digestHex,
  digestOfHex,
  digestOfSigned,
  digestToBigInt,
  differingDigestBuckets,
  heldDigest,
  md5Hex,
  sinkDocumentDigest,
  stateDigest,
  type ExpectedDocument,
  type SinkDocument,
} from './drift.ts';

const want = (document_id: string, over: Partial<ExpectedDocument> = {}): ExpectedDocument => ({
  tenant_id: 't1',
  document_id,
  version: 2,
  acl_version: 1,
  acl: ['alice'],
  deleted: false,
  chunk_count: 3,
  ...over,
});
const have = (document_id: string, over: Partial<SinkDocument> = {}): SinkDocument => ({
  tenant_id: 't1',
  document_id,
  version: 2,
  acl: ['alice'],
  chunk_indexes: [0, 1, 2],
  ...over,
});

describe('diffDrift', () => {
  it('reports zero drift when the sink matches, including deleted and empty documents', () => {
    const report = diffDrift(
      [want('a'), want('gone', { deleted: true }), want('empty', { chunk_count: 0 }), want('b', { acl: ['y', 'x'] })],
      [have('a', { chunk_indexes: [2, 0, 1] }), have('b', { acl: ['x', 'y', 'x'] })],
    );
    assert.deepEqual(report.drift, emptyCounts());
    assert.deepEqual(report.tenants, { t1: emptyCounts() });
  });

  it('counts each kind and samples the documents', () => {
    const report = diffDrift(
      [
        want('missing'),
        want('deleted', { deleted: true }),
        want('stale', { version: 3 }),
        want('acl', { acl: ['bob'] }),
        want('orphans', { chunk_count: 1 }),
        want('holes', { chunk_count: 5 }),
        want('stale-and-acl', { version: 3, acl: ['bob'] }),
      ],
      [
        have('deleted'),
        have('unknown', { tenant_id: 't2' }),
        have('stale'),
        have('acl'),
        have('orphans'),
        have('holes'),
        have('stale-and-acl', { chunk_indexes: [0, 1, 2, 3, 4, 5] }),
      ],
    );
    // holes (an index below the chunk count absent) are missing chunks; count_mismatch is per
    // tenant: t1 has one whole ghost and one whole missing document (net 0), t2 one ghost.
    assert.deepEqual(report.drift, {
      missing: 2,
      ghost: 2,
      stale: 2,
      acl_mismatch: 2,
      orphan_chunks: 2,
      count_mismatch: 1,
    });
    assert.deepEqual(report.samples.ghost.sort(), ['t1:deleted', 't2:unknown']);
    assert.deepEqual(report.samples.missing.sort(), ['t1:holes', 't1:missing']);
    assert.deepEqual(report.samples.orphan_chunks, ['t1:orphans']);
    assert.deepEqual(report.samples.count_mismatch, ['t2']);
    assert.equal(report.tenants.t2?.ghost, 1);
    assert.equal(report.tenants.t2?.count_mismatch, 1);
    assert.equal(report.tenants.t1?.ghost, 1);
    assert.equal(report.tenants.t1?.count_mismatch, 0);
  });

  it('a sink document without chunks is not held', () => {
    const report = diffDrift([want('a')], [have('a', { chunk_indexes: [] })]);
    assert.equal(report.drift.missing, 1);
  });

  it('caps samples per kind', () => {
    const docs = Array.from({ length: 30 }, (_, i) => want(`d${i}`));
    const report = diffDrift(docs, [], { sampleSize: 5 });
    assert.equal(report.drift.missing, 30);
    assert.equal(report.samples.missing.length, 5);
  });
});

describe('classifyDocument', () => {
  it('judges only presence, version and ACL when the chunk count is unknown', () => {
    assert.deepEqual(classifyDocument(want('a', { chunk_count: null }), have('a', { chunk_indexes: [0, 7] })), []);
    assert.deepEqual(classifyDocument(want('a', { chunk_count: null }), undefined), [['missing', 1]]);
    assert.deepEqual(classifyDocument(want('a', { chunk_count: 0 }), undefined), []);
  });

  it('treats a document unknown to the source as a ghost', () => {
    assert.deepEqual(classifyDocument(undefined, have('x')), [['ghost', 1]]);
    assert.deepEqual(classifyDocument(undefined, have('x', { chunk_indexes: [] })), []);
  });
});

describe('DriftTally', () => {
  it('derives count_mismatch from whole documents and state-topic keys, with the counts of each side', () => {
    const tally = new DriftTally();
    tally.tenant('quiet');
    tally.document('t1', 't1:m', want('m'), undefined); // sink -1
    tally.document('t1', 't1:g', undefined, have('g')); // sink +1
    tally.document('t2', 't2:m', want('m', { tenant_id: 't2' }), undefined); // sink -1
    tally.stateTopic('t2', 1); // state topic +1
    const report = tally.report(
      new Map([
        ['t1', 10],
        ['t2', 5],
      ]),
    );
    assert.equal(report.tenants.t1?.count_mismatch, 0);
    assert.equal(report.tenants.t2?.count_mismatch, 2);
    assert.equal(report.tenants.quiet?.count_mismatch, 0);
    assert.equal(report.drift.count_mismatch, 2);
    assert.deepEqual(report.samples.count_mismatch, ['t2']);
    assert.deepEqual(report.counts?.t2, { source: 5, state_topic: 6, sink: 4 });
    assert.deepEqual(report.counts?.quiet, { source: 0, state_topic: 0, sink: 0 });
  });
});

describe('SQL-computable digests', () => {
  it('a digest is the first 64 bits of md5, as PostgreSQL computes them', () => {
    // SELECT ('x' || substr(md5('abc'), 1, 16))::bit(64)::bigint  →  -8070080442485551184
    const d = digestOfHex(md5Hex('abc'));
    assert.equal(BigInt.asIntN(64, digestToBigInt(d)), -8070080442485551184n);
    assert.deepEqual(digestOfSigned('-8070080442485551184'), d);
    // SELECT lpad(to_hex(-8070080442485551184::bigint), 16, '0')  →  900150983cd24fb0
    assert.equal(digestHex(d), '900150983cd24fb0');
    assert.equal(digestHex({ hi: 0, lo: 1 }), '0000000000000001');
  });

  it('an ACL digest does not depend on order or duplicates', () => {
    assert.deepEqual(aclDigest(['b', 'a', 'b']), aclDigest(['a', 'b']));
    assert.deepEqual(aclDigest([]), { hi: 0, lo: 0 });
    assert.notDeepEqual(aclDigest(['a']), aclDigest(['a', 'b']));
    const cache = new Map();
    assert.deepEqual(aclDigest(['a', 'b'], cache), aclDigest(['b', 'a'], cache));
  });

  it('a sink document matches its expected digest exactly when its chunks are 0..n-1', () => {
    const expected = (n: number) => heldDigest('t1', 'd', 2, aclDigest(['alice']), n, n);
    assert.deepEqual(sinkDocumentDigest(have('d', { chunk_indexes: [2, 0, 1] })), expected(3));
    assert.deepEqual(sinkDocumentDigest(have('d', { chunk_indexes: [0, 1, 2] })), expected(3));
    assert.notDeepEqual(sinkDocumentDigest(have('d', { chunk_indexes: [0, 1, 3] })), expected(3));
    assert.notDeepEqual(sinkDocumentDigest(have('d', { chunk_indexes: [0, 1] })), expected(3));
    assert.notDeepEqual(sinkDocumentDigest(have('d', { version: 1 })), expected(3));
    assert.notDeepEqual(sinkDocumentDigest(have('d', { acl: ['bob'] })), expected(3));
  });

  it('the state digest covers the versions', () => {
    assert.notDeepEqual(stateDigest('t', 'd', 1, 1), stateDigest('t', 'd', 1, 2));
    assert.notDeepEqual(stateDigest('t', 'd', 1, 1), stateDigest('t', 'd', 2, 1));
  });

  it('bucket aggregates are order-free and pinpoint the differing bucket', () => {
    const docs = Array.from({ length: 50 }, (_, i) => have(`d${i}`, { version: 1 + (i % 4) }));
    const fold = (list: SinkDocument[]) => {
      const b = new DigestBuckets(8);
      for (const d of list) b.add(bucketOf(d.tenant_id, d.document_id, 8), sinkDocumentDigest(d));
      return b;
    };
    assert.deepEqual(differingDigestBuckets(8, fold(docs), fold([...docs].reverse())), []);
    const changed = docs.map((d, i) => (i === 7 ? { ...d, acl: ['mallory'] } : d));
    assert.deepEqual(differingDigestBuckets(8, fold(docs), fold(changed)), [bucketOf('t1', 'd7', 8)]);
    assert.deepEqual(differingDigestBuckets(8, undefined, new DigestBuckets(8)), []);
    assert.equal(fold(docs).total(), 50);
  });

  it('bucketCount is a power of two that grows with the tenant', () => {
    assert.equal(bucketCount(0), 1);
    assert.equal(bucketCount(32), 1);
    assert.equal(bucketCount(33), 2);
    assert.equal(bucketCount(100_000), 4096);
    assert.equal(bucketCount(1e12), 65_536);
  });
});
