import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../domain/errors.ts';
import { createSink, sinks } from './index.ts';

const pgvector = { url: 'postgres://postgres@127.0.0.1:55432/vecsync_vectors' };
const root = { sink: { type: 'pgvector', name: 'main', pgvector } };

describe('sink registry', () => {
  it('is keyed by the config type word', () => {
    assert.deepEqual(Object.keys(sinks), ['pgvector', 'pinecone']);
  });

  it('creates the configured sink without connecting', async () => {
    const sink = await createSink(root);
    assert.equal(sink.type, 'pgvector');
    assert.equal(sink.name, 'main');
    await sink.close();
  });

  it('names an unknown sink type', async () => {
    await assert.rejects(
      () => createSink({ ...root, sink: { type: 'nope', name: 'main', pgvector } }),
      (e: unknown) => e instanceof ConfigError && /VECSYNC_SINK="nope"/.test(e.message),
    );
    await assert.rejects(
      () => createSink({ ...root, sink: { type: 'toString', name: 'main', pgvector } }),
      ConfigError,
    );
  });
});
