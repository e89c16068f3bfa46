import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPoison } from '../../../domain/errors.ts';
import type { DocumentWrite, StoredChunk } from '../types.ts';
import {
  aclBytes,
  aclUpdates,
  checkDocumentWrite,
  chunkMetadata,
  compareBytes,
  decodeRecord,
  documentMetadata,
  fetchBatches,
  ownChunkIndexes,
  packUpserts,
  shrinkIds,
  sizeRecord,
  storedDocument,
  toMetadataValue,
  upsertBodyBytes,
  type Metadata,
} from './encoding.ts';
import { planWaves } from '../batch.ts';
import { sampleWrite } from '../test-fixtures.ts';

const limits = { dimensions: 3, maxMetadataBytes: 40_960, maxUpsertBytes: 2_000_000 };

const write = sampleWrite;

describe('pinecone metadata', () => {
  it('converts to Pinecone types: nulls dropped, lists of strings, nested values as JSON', () => {
    assert.equal(toMetadataValue(null), undefined);
    assert.equal(toMetadataValue(undefined), undefined);
    assert.equal(toMetadataValue('x'), 'x');
    assert.equal(toMetadataValue(1.5), 1.5);
    assert.equal(toMetadataValue(false), false);
    assert.equal(toMetadataValue(Number.NaN), undefined);
    assert.equal(toMetadataValue(12n), '12');
    assert.deepEqual(toMetadataValue(['a', 1, null, true, { b: 1 }]), ['a', '1', 'true', '{"b":1}']);
    assert.deepEqual(toMetadataValue([]), []);
    assert.equal(toMetadataValue({ a: [1, null] }), '{"a":[1,null]}');
  });

  it('leaves out reserved keys (the sink owns them) and keys Pinecone refuses', () => {
    assert.deepEqual(documentMetadata({ category: 'c', acl: 'spoof', document_version: 99, $where: 1, lang: null }), {
      category: 'c',
    });
    const m = chunkMetadata(
      { category: 'c' },
      {
        documentId: 'd',
        chunkIndex: 1,
        documentVersion: 2,
        acl: ['a'],
        aclVersion: 3,
        modelKey: 'm.v1',
        contentHash: 'h',
      },
    );
    assert.deepEqual(m, {
      category: 'c',
      document_id: 'd',
      chunk_index: 1,
      document_version: 2,
      acl_version: 3,
      acl: ['a'],
      model: 'm.v1',
      content_hash: 'h',
    });
  });
});

describe('pinecone write validation', () => {
  it('accepts a well-formed write', () => {
    assert.equal(checkDocumentWrite(write(), limits, 'm.v1'), null);
    assert.equal(checkDocumentWrite(write({ acl: null }), limits, 'm.v1'), null);
    assert.equal(checkDocumentWrite(write({ chunkCount: 0, chunks: [] }), limits, 'm.v1'), null);
  });

  it('rejects what Pinecone would refuse or what would corrupt the index, as poison', () => {
    const nan = write();
    nan.chunks[0]!.embedding[1] = Number.NaN;
    // The shared checks (validate.test.ts) run first; one of them stands for all.
    const cases: [string, DocumentWrite, string][] = [
      ['NaN (shared check)', nan, 'invalid_vector'],
      ['vector id over 512 bytes', write({ documentId: 'd'.repeat(510) }), 'invalid_write'],
      ['metadata over 40 KB', write({ metadata: { category: 'x'.repeat(41_000) } }), 'metadata_too_large'],
      [
        'a record over the upsert request limit',
        write({ metadata: { category: 'x'.repeat(30_000) } }),
        'invalid_write',
      ],
    ];
    for (const [name, w, reason] of cases) {
      const error = checkDocumentWrite(
        w,
        name.includes('request limit') ? { ...limits, maxUpsertBytes: 20_000 } : limits,
        'm.v1',
      );
      assert.ok(error && isPoison(error), name);
      assert.equal(error.reason, reason, name);
    }
  });

  it('an ACL too large for a record is not refused here: the sink fails it closed when it writes', () => {
    const huge = { principals: Array.from({ length: 3000 }, (_, i) => `principal-${i}`), aclVersion: 1 };
    assert.equal(checkDocumentWrite(write({ acl: huge }), limits, 'm.v1'), null);
    assert.ok(aclBytes(huge.principals) > limits.maxMetadataBytes);
  });
});

describe('pinecone requests', () => {
  const metadata = fc.dictionary(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.array(fc.string({ maxLength: 10 }))),
  );
  const record = fc.record({
    id: fc.string({ minLength: 1, maxLength: 30 }),
    values: fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 20 }),
    metadata,
  });

  it('measures the body exactly as the SDK serializes it', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.array(record, { maxLength: 20 }), (namespace, records) => {
        const sized = records.map((r) => sizeRecord({ ...r, metadata: r.metadata as Metadata }));
        // UpsertRequestToJSON → {vectors: [VectorToJSON: id, values, sparseValues (undefined), metadata], namespace}
        const body = JSON.stringify({
          vectors: records.map((r) => ({ id: r.id, values: r.values, sparseValues: undefined, metadata: r.metadata })),
          namespace,
        });
        assert.equal(upsertBodyBytes(namespace, sized), Buffer.byteLength(body, 'utf8'));
      }),
    );
  });

  it('packs upserts within the count and byte limits, in order, filling each request', () => {
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 2_000, max: 6_000 }),
        (records, maxVectors, maxBytes) => {
          const sized = records.map((r) => sizeRecord({ ...r, metadata: r.metadata as Metadata }));
          const batches = packUpserts('ns', sized, { maxVectors, maxBytes });
          assert.deepEqual(batches.flat(), sized, 'every record once, in order');
          batches.forEach((batch, i) => {
            assert.ok(batch.length >= 1 && batch.length <= maxVectors);
            assert.ok(upsertBodyBytes('ns', batch) <= maxBytes);
            const next = batches[i + 1]?.[0];
            if (next && batch.length < maxVectors) {
              assert.ok(upsertBodyBytes('ns', [...batch, next]) > maxBytes, 'greedy: the next record did not fit');
            }
          });
        },
      ),
    );
  });

  it('refuses a record that can never fit', () => {
    const big = sizeRecord({ id: 'x', values: [1], metadata: { a: 'y'.repeat(200) } });
    assert.throws(() => packUpserts('ns', [big], { maxVectors: 10, maxBytes: 100 }), RangeError);
  });

  it('cuts fetches by id count and by URL length', () => {
    const ids = Array.from({ length: 2500 }, (_, i) => `tenant:doc#${i}`);
    const byCount = fetchBatches(ids, 1000, 1_000_000);
    assert.deepEqual(
      byCount.map((b) => b.length),
      [1000, 1000, 500],
    );
    const byChars = fetchBatches(ids, 1000, 2000);
    assert.deepEqual(byChars.flat(), ids);
    for (const batch of byChars) {
      assert.ok(batch.map((id) => `ids=${encodeURIComponent(id)}&`).join('').length <= 2000);
    }
  });
});

describe('pinecone ids', () => {
  it('shrink: the dropped range by id, from the ledger count or the most chunks, plus listed orphans', () => {
    const ids = (xs: string[]) => xs.map((id) => id.slice(id.lastIndexOf('#') + 1)).join(',');
    const w = { tenantId: 't', documentId: 'd', chunkCount: 2 };
    assert.equal(ids(shrinkIds({ ...w, previousChunkCount: 5 }, 512, 0)), '2,3,4');
    assert.equal(ids(shrinkIds({ ...w, previousChunkCount: 1 }, 512, 0)), '');
    assert.equal(ids(shrinkIds({ ...w, previousChunkCount: 1 }, 512, 4)), '2,3', 'what this call wrote earlier');
    assert.equal(shrinkIds(w, 8, 0).length, 6, 'no ledger count: up to the most chunks a document can have');
    assert.equal(ids(shrinkIds({ ...w, previousChunkCount: 3 }, 512, 0, [0, 1, 2, 9, 700])), '2,9,700');
    assert.deepEqual(shrinkIds({ tenantId: 't', documentId: 'a#1', chunkCount: 0, previousChunkCount: 1 }, 512, 0), [
      't:a#1#0',
    ]);
  });

  it('listed ids belong to a document only when they parse back to exactly it', () => {
    const listed = ['t:a#0', 't:a#1', 't:a#1#0', 't:a#1#1', 't:a#x', 't:a#b#2', 'u:a#3'];
    assert.deepEqual(ownChunkIndexes('t', 'a', listed), [0, 1]);
    assert.deepEqual(ownChunkIndexes('t', 'a#1', listed), [0, 1]);
    assert.deepEqual(ownChunkIndexes('t', 'a#b', listed), [2]);
  });

  it('waves: each key once per wave, occurrences in order', () => {
    assert.deepEqual(planWaves(['a', 'b', 'a', 'c', 'a', 'b']), [[0, 1, 3], [2, 5], [4]]);
  });
});

describe('pinecone reads', () => {
  it('decodes stored records; skips ids that are not chunk ids of the namespace', () => {
    const chunk = decodeRecord(
      't',
      't:d#2',
      {
        document_id: 'd',
        chunk_index: 2,
        document_version: 5,
        acl_version: 6,
        acl: ['a', 7],
        model: 'm',
        content_hash: 'h',
      },
      [0.1, 0.2],
      true,
    );
    assert.deepEqual(chunk, {
      tenant_id: 't',
      document_id: 'd',
      chunk_index: 2,
      document_version: 5,
      acl_version: 6,
      acl: ['a'],
      model: 'm',
      content_hash: 'h',
      embedding: [Math.fround(0.1), Math.fround(0.2)],
    });
    assert.equal(decodeRecord('t', 'not-a-chunk', {}, undefined, false), undefined);
    assert.equal(decodeRecord('t', 'u:d#0', {}, undefined, false), undefined);
    assert.equal(decodeRecord('t', 't:d#0', undefined, undefined, false)?.document_version, 0);
  });

  it('a stored document: lowest version, the ACL of its oldest-ACL chunk, sorted indexes', () => {
    const c = (i: number, v: number, av: number, acl: string[]): StoredChunk => ({
      tenant_id: 't',
      document_id: 'd',
      chunk_index: i,
      document_version: v,
      acl_version: av,
      acl,
      model: 'm',
      content_hash: 'h',
    });
    assert.deepEqual(storedDocument([c(2, 3, 5, ['new']), c(0, 2, 4, ['old']), c(1, 3, 5, ['new'])]), {
      documentId: 'd',
      documentVersion: 2,
      aclVersion: 4,
      acl: ['old'],
      chunkIndexes: [0, 1, 2],
    });
  });

  it('orders like PostgreSQL C collation and Pinecone list: by UTF-8 bytes', () => {
    assert.ok(compareBytes('a', 'b') < 0);
    assert.ok(compareBytes('doc-1', 'doc-10') < 0);
    // U+FF5E sorts before U+1F600 in UTF-16 code units only the other way round.
    assert.ok(compareBytes('\uff5e', '\u{1f600}') < 0);
    assert.ok('\uff5e' > '\u{1f600}');
  });
});

describe('pinecone ACL updates', () => {
  const revoke = { tenantId: 't', documentId: 'd', principals: ['alice'], aclVersion: 4, chunkCount: 2 };

  it("reach every chunk of each model's index, by that model's chunk count", () => {
    const write = { ...revoke, chunkCounts: { 'a.v1': 2, 'b.v1': 5 } };
    assert.deepEqual(
      aclUpdates([write], 'a.v1').map((u) => u.id),
      ['t:d#0', 't:d#1'],
    );
    assert.deepEqual(
      aclUpdates([write], 'b.v1').map((u) => u.id),
      ['t:d#0', 't:d#1', 't:d#2', 't:d#3', 't:d#4'],
    );
    // A model the write does not name: the document's count.
    assert.equal(aclUpdates([write], 'c.v1').length, 2);
    for (const u of aclUpdates([write], 'b.v1')) {
      assert.deepEqual(u, { position: 0, namespace: 't', id: u.id, metadata: { acl: ['alice'], acl_version: 4 } });
    }
  });

  it('fail closed: the same ids with an empty ACL at the new version', () => {
    const updates = aclUpdates([revoke, { ...revoke, documentId: 'e', chunkCount: 1 }], 'a.v1', true);
    assert.deepEqual(
      updates.map((u) => [u.position, u.id, u.metadata]),
      [
        [0, 't:d#0', { acl: [], acl_version: 4 }],
        [0, 't:d#1', { acl: [], acl_version: 4 }],
        [1, 't:e#0', { acl: [], acl_version: 4 }],
      ],
    );
  });
});
