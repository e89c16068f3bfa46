import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { aclParams, decodeVectorText, deleteParams, encodeVector, encodeVectorArray, writeParams } from './encoding.ts';
import { planWaves } from '../batch.ts';
import { sampleWrite } from '../test-fixtures.ts';

/** array_recv/vector_recv as the server reads them, to check the bytes we send. */
function decodeVectorArray(buffer: Buffer): { oid: number; vectors: number[][] } {
  assert.equal(buffer.readInt32BE(0), 1, 'one dimension');
  assert.equal(buffer.readInt32BE(4), 0, 'no nulls');
  const oid = buffer.readUInt32BE(8);
  const length = buffer.readInt32BE(12);
  assert.equal(buffer.readInt32BE(16), 1, 'lower bound 1');
  let o = 20;
  const vectors: number[][] = [];
  for (let k = 0; k < length; k++) {
    const bytes = buffer.readInt32BE(o);
    const dims = buffer.readInt16BE(o + 4);
    assert.equal(buffer.readInt16BE(o + 6), 0, 'unused is 0');
    assert.equal(bytes, 4 + 4 * dims);
    const v: number[] = [];
    for (let i = 0; i < dims; i++) v.push(buffer.readFloatBE(o + 8 + 4 * i));
    vectors.push(v);
    o += 4 + bytes;
  }
  assert.equal(o, buffer.length, 'no trailing bytes');
  return { oid, vectors };
}

const float32 = fc.float({ noNaN: true, noDefaultInfinity: true });

const write = sampleWrite;

describe('pgvector encoding', () => {
  it('binary vector[] round-trips every float32 exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: 8 }),
        fc.array(float32, { minLength: 128, maxLength: 128 }),
        (dims, count, pool) => {
          const vectors = Array.from({ length: count }, (_, k) =>
            Float32Array.from({ length: dims }, (_, i) => pool[(k * dims + i) % pool.length]!),
          );
          const decoded = decodeVectorArray(encodeVectorArray(vectors, dims, 16390));
          assert.equal(decoded.oid, 16390);
          assert.deepEqual(
            decoded.vectors,
            vectors.map((v) => Array.from(v)),
          );
        },
      ),
    );
  });

  it('refuses a vector of other dimensions (a bug: validation runs first)', () => {
    assert.throws(() => encodeVectorArray([new Float32Array(2)], 3, 1), RangeError);
  });

  it('binary vector (query) layout', () => {
    const b = encodeVector(Float32Array.from([1, -2.5]));
    assert.equal(b.readInt16BE(0), 2);
    assert.equal(b.readInt16BE(2), 0);
    assert.deepEqual([b.readFloatBE(4), b.readFloatBE(8)], [1, -2.5]);
  });

  it('reads pgvector text output', () => {
    assert.deepEqual(decodeVectorText('[1,-2.5,3e-7]'), [1, -2.5, 3e-7]);
    assert.deepEqual(decodeVectorText('[]'), []);
    assert.throws(() => decodeVectorText('{1}'));
  });

  it('waves: each key once per wave, occurrences in order, nothing lost', () => {
    assert.deepEqual(planWaves(['a', 'b', 'a', 'c', 'a', 'b']), [[0, 1, 3], [2, 5], [4]]);
    assert.deepEqual(planWaves([]), []);
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 30 }), (keys) => {
        const waves = planWaves(keys);
        assert.deepEqual(
          waves.flat().sort((x, y) => x - y),
          keys.map((_, i) => i),
        );
        for (const wave of waves) assert.equal(new Set(wave.map((i) => keys[i])).size, wave.length);
        const waveOf = new Map(waves.flatMap((wave, w) => wave.map((i) => [i, w] as const)));
        keys.forEach((key, i) => {
          const later = keys.findIndex((k, j) => j > i && k === key);
          if (later >= 0) assert.ok(waveOf.get(later)! > waveOf.get(i)!);
        });
      }),
    );
  });

  it('builds parallel chunk arrays and one documents JSON', () => {
    const w1 = write();
    const w2 = write({ documentId: 'd2', acl: null, chunkCount: 1, chunks: [write().chunks[0]!] });
    const values = writeParams('main', 'm.v1', [w1, w2], 3, 42);
    assert.equal(values.length, 8);
    const [sink, model, docs, ords, indexes, contents, hashes, vectors] = values as [
      string,
      string,
      string,
      number[],
      number[],
      string[],
      string[],
      Buffer,
    ];
    assert.equal(sink, 'main');
    assert.equal(model, 'm.v1');
    assert.deepEqual(JSON.parse(docs), [
      {
        ord: 0,
        tenant_id: 't1',
        document_id: 'doc:1#x',
        document_version: 2,
        chunk_count: 2,
        title: 'T',
        metadata: { category: 'a' },
        acl: ['alice'],
        acl_version: 3,
      },
      {
        ord: 1,
        tenant_id: 't1',
        document_id: 'd2',
        document_version: 2,
        chunk_count: 1,
        title: 'T',
        metadata: { category: 'a' },
        acl: null,
        acl_version: null,
      },
    ]);
    assert.deepEqual(ords, [0, 0, 1]);
    assert.deepEqual(indexes, [0, 1, 0]);
    assert.deepEqual(contents, ['c0', 'c1', 'c0']);
    assert.deepEqual(hashes, ['h0', 'h1', 'h0']);
    assert.deepEqual(decodeVectorArray(vectors).vectors, [
      [0.5, 0.5, 0.5],
      [1.5, 1.5, 1.5],
      [0.5, 0.5, 0.5],
    ]);
  });

  it('builds the ACL JSON', () => {
    assert.deepEqual(
      JSON.parse(aclParams([{ tenantId: 't', documentId: 'd', principals: ['a', 'b'], aclVersion: 7, chunkCount: 3 }])),
      [{ ord: 0, tenant_id: 't', document_id: 'd', acl: ['a', 'b'], acl_version: 7 }],
    );
  });

  it('builds the delete parameters: versions and ACL versions per document, null when unversioned', () => {
    assert.deepEqual(
      deleteParams(
        's',
        [
          { tenantId: 't', documentId: 'd', version: 4, aclVersion: 2 },
          { tenantId: 't', documentId: 'e' },
        ],
        ['a.v1', 'b.v1'],
      ),
      ['s', ['t', 't'], ['d', 'e'], [4, null], [2, null], ['a.v1', 'b.v1']],
    );
  });
});
