import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../domain/errors.ts';
import { createEmbedder, embedders, type EmbedderSettings } from './index.ts';

const settings: EmbedderSettings = {
  type: 'hashing',
  dimensions: 32,
  batchSize: 8,
  timeoutMs: 1000,
  openai: { baseUrl: 'http://127.0.0.1:1/v1', apiKey: '', model: 'm' },
  minilm: { threads: 1, batchSize: 8, cacheDir: '/nonexistent/never-read' },
  retry: { maxAttempts: 1, initialMs: 1, maxMs: 1 },
};

describe('embedder registry', () => {
  it('maps each config type word to the provider of the same name', () => {
    for (const type of Object.keys(embedders)) {
      // minilm's dimensions are the model's; creating it loads nothing yet.
      const dimensions = type === 'minilm' ? 384 : 32;
      const embedder = createEmbedder({ ...settings, type, dimensions });
      assert.equal(embedder.name, type);
      assert.equal(embedder.dimensions, dimensions);
    }
  });

  it('refuses an unknown type with a ConfigError listing the known ones', () => {
    assert.throws(
      () => createEmbedder({ ...settings, type: 'toString' }),
      (e: unknown) => e instanceof ConfigError && /hashing, minilm, openai/.test(e.message),
    );
  });
});
