import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from './index.ts';
import { ConfigError } from '../domain/errors.ts';

describe('minilm configuration', () => {
  it('is the default embedder, with a model name that follows the embedder', () => {
    const config = loadConfig({ VECSYNC_STACK_HOME: '/srv/stack' });
    assert.equal(config.embedder.type, 'minilm');
    assert.equal(config.embedder.model, 'minilm-384');
    assert.deepEqual(config.embedder.minilm, {
      threads: 1,
      batchSize: 1,
      maxTokens: 256,
      cacheDir: path.join('/srv/stack', 'cache', 'models'),
    });
    assert.equal(loadConfig({ VECSYNC_EMBEDDER: 'hashing' }).embedder.model, 'hashing-384');
    assert.equal(loadConfig({ VECSYNC_EMBEDDING_MODEL: 'mine' }).embedder.model, 'mine');
  });

  it('reads threads, batch size, max tokens and cache dir', () => {
    const m = loadConfig({
      VECSYNC_MINILM_THREADS: '2',
      VECSYNC_MINILM_BATCH_SIZE: '16',
      VECSYNC_MINILM_MAX_TOKENS: '512',
      VECSYNC_MINILM_CACHE_DIR: '/models',
    }).embedder.minilm;
    assert.equal(m.threads, 2);
    assert.equal(m.batchSize, 16);
    assert.equal(m.maxTokens, 512);
    assert.equal(m.cacheDir, '/models');
  });

  it('names the bad variable', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ VECSYNC_EMBEDDING_DIMENSIONS: '256' }, /VECSYNC_EMBEDDING_DIMENSIONS=256/],
      [{ VECSYNC_MINILM_THREADS: '0' }, /VECSYNC_MINILM_THREADS/],
      [{ VECSYNC_MINILM_MAX_TOKENS: '1024' }, /VECSYNC_MINILM_MAX_TOKENS/],
      [{ VECSYNC_EMBEDDER: 'bert' }, /VECSYNC_EMBEDDER/],
    ];
    for (const [env, message] of bad) {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    }
    // Other embedders keep their own dimensions.
    assert.equal(
      loadConfig({ VECSYNC_EMBEDDER: 'hashing', VECSYNC_EMBEDDING_DIMENSIONS: '256' }).embedder.dimensions,
      256,
    );
  });
});
