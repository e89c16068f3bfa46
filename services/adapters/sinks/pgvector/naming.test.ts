import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../../domain/errors.ts';
import { chunkTableName, chunkTableNames, qualify } from './naming.ts';

describe('pgvector naming', () => {
  it('maps a model key to its table', () => {
    assert.equal(chunkTableName('hashing-384.v1'), 'chunks_hashing_384_v1');
    assert.equal(chunkTableName('text-embedding-3-small.v12'), 'chunks_text_embedding_3_small_v12');
    assert.equal(chunkTableName('Upper.V2'), 'chunks_upper_v2');
  });

  it('derives quoted, schema-qualified names and index names', () => {
    const names = chunkTableNames('hashing-384.v1');
    assert.equal(names.qualified, '"vecsync_sink"."chunks_hashing_384_v1"');
    assert.equal(names.hnswIndex, 'chunks_hashing_384_v1_hnsw');
    assert.equal(names.documentIndex, 'chunks_hashing_384_v1_doc');
    assert.equal(qualify('x"y'), '"vecsync_sink"."x""y"');
  });

  it('keeps long keys distinct and every derived identifier within 63 bytes', () => {
    const a = chunkTableName(`${'sentence-transformers-all-minilm-l6-v2-'.repeat(3)}a.v1`);
    const b = chunkTableName(`${'sentence-transformers-all-minilm-l6-v2-'.repeat(3)}b.v1`);
    assert.notEqual(a, b);
    assert.match(a, /_[0-9a-f]{8}$/);
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,150}$/), fc.nat(1000), (name, version) => {
        const names = chunkTableNames(`${name}.v${version}`);
        for (const id of [names.table, names.hnswIndex, names.documentIndex]) assert.ok(id.length <= 63, id);
        assert.match(names.table, /^chunks_[a-z0-9_]+$/);
      }),
    );
  });

  it('is injective on valid model keys (<name>.v<version>)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        fc.nat(50),
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        fc.nat(50),
        (n1, v1, n2, v2) => {
          const k1 = `${n1}.v${v1}`;
          const k2 = `${n2}.v${v2}`;
          assert.equal(chunkTableName(k1) === chunkTableName(k2), k1 === k2);
        },
      ),
    );
  });

  it('rejects keys that cannot be a model key', () => {
    for (const bad of ['', '.v1', 'a b.v1', 'a;drop.v1', 'a"b.v1']) {
      assert.throws(() => chunkTableName(bad), ConfigError, bad);
    }
  });
});
