import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import avro from 'avsc';
import fc from 'fast-check';
import { PoisonMessageError } from '../errors.ts';
import type { DocumentChunks } from '../types.ts';
import {
  bytesToEmbedding,
  chunkSchema,
  chunkType,
  embeddingToBytes,
  fromAvroRecord,
  toAvroRecord,
  valueSubject,
  type AvroDocumentChunks,
} from './chunks.ts';

const record: DocumentChunks = {
  tenant_id: 't1',
  document_id: 'doc-1',
  document_version: 7,
  acl_version: 3,
  acl: ['alice', 'bob'],
  chunk_count: 2,
  model_key: 'hashing-384.v1',
  title: 'Title',
  metadata: { category: 'news', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } },
  content_hash: 'ab'.repeat(32),
  created_at: '2025-01-02T03:04:05.123456+00:00',
  outbox_id: 12345,
  chunks: [
    {
      chunk_index: 0,
      content: 'first',
      content_hash: '01'.repeat(32),
      embedding: Float32Array.from([0.5, -0.25, 1, 0]),
    },
    {
      chunk_index: 1,
      content: 'second ✓',
      content_hash: '02'.repeat(32),
      embedding: Float32Array.from([0.1, 0.2, 0.3, 0.4]),
    },
  ],
};

const roundTrip = (r: DocumentChunks): DocumentChunks =>
  fromAvroRecord(chunkType.fromBuffer(chunkType.toBuffer(toAvroRecord(r))) as AvroDocumentChunks);

function poisonWith(reason: string) {
  return (e: unknown) => e instanceof PoisonMessageError && e.reason === reason;
}

describe('chunk record Avro encoding (no registry)', () => {
  it('round-trips a record, embeddings as Float32Array', () => {
    assert.deepEqual(roundTrip(record), record);
  });

  it('round-trips number[] embeddings at float32 precision, zero chunks, null title and outbox id', () => {
    const plain = { ...record, chunks: [{ ...record.chunks[0]!, embedding: [0.1, 0.2] }], chunk_count: 1 };
    assert.deepEqual(roundTrip(plain).chunks[0]!.embedding, Float32Array.from([0.1, 0.2]));
    const empty = { ...record, chunks: [], chunk_count: 0, title: null, outbox_id: null, metadata: {} };
    assert.deepEqual(roundTrip(empty), empty);
  });

  it('round-trips arbitrary records', () => {
    // avsc refuses longs from 2^53 - 1 up (they would lose precision as JS numbers).
    const long = fc.integer({ min: 0, max: 2 ** 52 });
    const chunk = (i: number, dims: number) =>
      fc
        .record({
          chunk_index: fc.constant(i),
          content: fc.string(),
          content_hash: fc.stringMatching(/^[0-9a-f]{64}$/),
          embedding: fc.float32Array({ minLength: dims, maxLength: dims, noDefaultInfinity: true, noNaN: true }),
        })
        .map((c) => ({ ...c })); // fast-check may build null-prototype objects
    const arb = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 16 })).chain(([n, dims]) =>
      fc.record({
        tenant_id: fc.string(),
        document_id: fc.string(),
        document_version: long,
        acl_version: long,
        acl: fc.array(fc.string()),
        chunk_count: fc.constant(n),
        model_key: fc.string(),
        title: fc.option(fc.string(), { nil: null }),
        metadata: fc.dictionary(fc.string(), fc.jsonValue()),
        content_hash: fc.string(),
        created_at: fc.string(),
        outbox_id: fc.option(long, { nil: null }),
        chunks: fc.tuple(...Array.from({ length: n }, (_, i) => chunk(i, dims))),
      }),
    );
    fc.assert(
      fc.property(arb, (r) => {
        const back = roundTrip(r as DocumentChunks);
        // JSON cannot tell -0 from 0 in metadata; compare metadata through JSON.
        assert.deepEqual(
          { ...back, metadata: JSON.stringify(back.metadata) },
          { ...r, metadata: JSON.stringify(r.metadata) },
        );
      }),
      { numRuns: 300 },
    );
  });

  it('stores embeddings as float32 little-endian bytes, and reads unaligned slices', () => {
    assert.deepEqual([...embeddingToBytes([1, -2])], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    const padded = Buffer.concat([Buffer.from([9]), embeddingToBytes([1.5, 2.5])]);
    assert.deepEqual(bytesToEmbedding(padded.subarray(1)), Float32Array.from([1.5, 2.5]));
    const view = new Float32Array([7, 8, 9]).subarray(1);
    assert.deepEqual([...bytesToEmbedding(embeddingToBytes(view))], [8, 9]);
  });

  it('reads records written without the optional fields (BACKWARD compatible evolution)', () => {
    const older = {
      ...chunkSchema,
      fields: chunkSchema.fields.filter((f) => f.name !== 'outbox_id' && f.name !== 'title'),
    };
    const writer = avro.Type.forSchema(older as avro.Schema);
    const { outbox_id: _o, title: _t, ...rest } = toAvroRecord(record);
    const decoded = chunkType.fromBuffer(writer.toBuffer(rest), chunkType.createResolver(writer)) as AvroDocumentChunks;
    const back = fromAvroRecord(decoded);
    assert.equal(back.outbox_id, null);
    assert.equal(back.title, null);
    assert.deepEqual(back.chunks, record.chunks);
  });

  it('refuses to encode a record whose chunk_count disagrees (a bug, not a poison message)', () => {
    assert.throws(() => toAvroRecord({ ...record, chunk_count: 3 }), TypeError);
  });

  it('refuses decoded records that break invariants with invalid_chunk_record', () => {
    const good = toAvroRecord(record);
    const cases: AvroDocumentChunks[] = [
      { ...good, chunk_count: 5 },
      { ...good, metadata: 'not json' },
      { ...good, metadata: '[1]' },
      { ...good, chunks: [good.chunks[1]!, good.chunks[0]!] },
      { ...good, chunks: [good.chunks[0]!, { ...good.chunks[1]!, embedding: Buffer.alloc(6) }] },
      { ...good, chunks: [good.chunks[0]!, { ...good.chunks[1]!, embedding: Buffer.alloc(8) }] },
    ];
    for (const bad of cases) assert.throws(() => fromAvroRecord(bad), poisonWith('invalid_chunk_record'));
  });

  it('names the subject <topic>-value', () => {
    assert.equal(valueSubject('vecsync.chunks.hashing-384.v1'), 'vecsync.chunks.hashing-384.v1-value');
  });
});
