import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../domain/errors.ts';
import { compilePgvectorConfig, pgvectorConfigFrom } from './config.ts';

const url = 'postgres://postgres@127.0.0.1:55432/vecsync_vectors';
const root = { sink: { name: 'main', pgvector: { url } } };

describe('pgvector config', () => {
  it('fills defaults from the root config', () => {
    const config = pgvectorConfigFrom(root);
    assert.equal(config.url, url);
    assert.equal(config.sinkName, 'main');
    assert.equal(config.poolSize, 4);
    assert.equal(config.hnswM, 16);
    assert.equal(config.hnswEfConstruction, 64);
  });

  it('names the bad field', () => {
    assert.throws(
      () => pgvectorConfigFrom(root, { poolSize: 0 }),
      (e: unknown) => e instanceof ConfigError && /option poolSize/.test(e.message),
    );
    assert.throws(() => pgvectorConfigFrom({ sink: { ...root.sink, name: 'Bad-Name' } }), /option sinkName/);
    assert.throws(() => pgvectorConfigFrom({ sink: { name: 'main', pgvector: { url: 'nope' } } }), /option url/);
  });

  it('rejects unknown keys', () => {
    assert.throws(
      () => compilePgvectorConfig({ url, sinkName: 'main', poolsize: 3 } as never),
      (e: unknown) => e instanceof ConfigError && /poolsize/.test(e.message),
    );
  });
});
