import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../domain/errors.ts';
import { compilePineconeConfig, pineconeConfigFrom } from './config.ts';

const root = {
  sink: { name: 'main', pinecone: { apiKey: 'k', index: 'vecsync', host: 'http://127.0.0.1:1' } },
  embedder: { model: 'hashing-384', version: 1 },
  limits: { maxChunks: 64 },
  retry: { maxAttempts: 3, initialMs: 50, maxMs: 1000 },
};

describe('pinecone config', () => {
  it('fills defaults and reads the root config', () => {
    const config = pineconeConfigFrom(root);
    assert.equal(config.apiKey, 'k');
    assert.equal(config.sinkName, 'main');
    assert.equal(config.targets.activeModelKey, 'hashing-384.v1');
    assert.deepEqual(config.targets.hosts, { 'hashing-384.v1': 'http://127.0.0.1:1' });
    assert.equal(config.maxChunks, 64);
    assert.deepEqual([config.retryMaxAttempts, config.retryInitialMs, config.retryMaxMs], [3, 50, 1000]);
    assert.equal(config.maxVectorsPerUpsert, 1000);
    assert.equal(config.maxUpsertBytes, 2_000_000);
    assert.equal(config.maxIdsPerDelete, 1000);
    assert.equal(config.maxMetadataBytes, 40_960);
  });

  it('names the bad field', () => {
    assert.throws(
      () => pineconeConfigFrom({ ...root, sink: { name: 'main', pinecone: { ...root.sink.pinecone, apiKey: '' } } }),
      (e: unknown) => e instanceof ConfigError && /option apiKey/.test(e.message),
    );
    assert.throws(() => pineconeConfigFrom(root, { maxVectorsPerUpsert: 1001 }), /option maxVectorsPerUpsert/);
    assert.throws(() => pineconeConfigFrom(root, { maxUpsertBytes: 3_000_000 }), /option maxUpsertBytes/);
    assert.throws(() => pineconeConfigFrom({ sink: { name: 'main' } }), /no pinecone section/);
  });

  it('rejects unknown keys', () => {
    assert.throws(
      () => compilePineconeConfig({ ...pineconeConfigFrom(root), batchSize: 3 } as never),
      (e: unknown) => e instanceof ConfigError && /batchSize/.test(e.message),
    );
  });
});
