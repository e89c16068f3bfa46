import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bucketChecksums,
  bucketOf,
  diffDrift,
  differingBuckets,
  emptyCounts,
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
    assert.deepEqual(report.drift, {
      missing: 1,
      ghost: 2,
      stale: 2,
      acl_mismatch: 2,
      orphan_chunks: 2,
      count_mismatch: 1,
    });
    assert.deepEqual(report.samples.ghost.sort(), ['t1:deleted', 't2:unknown']);
    assert.deepEqual(report.samples.orphan_chunks, ['t1:orphans']);
    assert.equal(report.tenants.t2?.ghost, 1);
    assert.equal(report.tenants.t1?.ghost, 1);
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

describe('bucket checksums', () => {
  it('matches the SQL formula for the bucket (first 32 bits of md5)', () => {
    // Values computed with PostgreSQL: ('x' || substr(md5(k), 1, 8))::bit(32)::bigint % n
    assert.equal(bucketOf('t1', 'doc-1', 64), 30);
    assert.equal(bucketOf('tenant-β', 'dök', 1000), 911);
  });

  const doc = fc.record({
    tenant_id: fc.constantFrom('t1', 't2', 't3'),
    document_id: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    version: fc.integer({ min: 1, max: 50 }),
    acl: fc.subarray(['alice', 'bob', 'carol']),
  });
  const docs = fc.uniqueArray(doc, { selector: (d) => `${d.tenant_id}:${d.document_id}`, maxLength: 60 });

  it('does not depend on the order documents are read in, nor on ACL order', () => {
    fc.assert(
      fc.property(docs, fc.integer(), (list, seed) => {
        const shuffled = [...list].sort(
          (a, b) => ((a.document_id.length * seed) % 7) - ((b.document_id.length * seed) % 7),
        );
        const reordered = shuffled.map((d) => ({ ...d, acl: [...d.acl].reverse() }));
        assert.deepEqual(differingBuckets(bucketChecksums(list, 16), bucketChecksums(reordered, 16)), []);
      }),
    );
  });

  it('pinpoints exactly the bucket of a changed version or ACL, or an extra document', () => {
    fc.assert(
      fc.property(
        docs.filter((l) => l.length > 0),
        fc.nat(),
        fc.constantFrom('version', 'acl', 'extra'),
        (list, pick, change) => {
          const target = list[pick % list.length]!;
          fc.pre(
            !list.some((d) => d.tenant_id === target.tenant_id && d.document_id === `${target.document_id}-extra`),
          );
          const changed =
            change === 'extra'
              ? [...list, { ...target, document_id: `${target.document_id}-extra` }]
              : list.map((d) =>
                  d !== target
                    ? d
                    : change === 'version'
                      ? { ...d, version: d.version + 1 }
                      : { ...d, acl: [...d.acl, 'zed'] },
                );
          const moved = change === 'extra' ? { ...target, document_id: `${target.document_id}-extra` } : target;
          assert.deepEqual(differingBuckets(bucketChecksums(list, 16), bucketChecksums(changed, 16)), [
            { tenant_id: moved.tenant_id, bucket: bucketOf(moved.tenant_id, moved.document_id, 16) },
          ]);
        },
      ),
    );
  });

  it('treats a tenant absent on one side as all-empty buckets', () => {
    const one = bucketChecksums([{ tenant_id: 't9', document_id: 'x', version: 1, acl: [] }], 4);
    assert.deepEqual(differingBuckets(one, {}), [{ tenant_id: 't9', bucket: bucketOf('t9', 'x', 4) }]);
    assert.deepEqual(differingBuckets({}, {}), []);
  });
});
