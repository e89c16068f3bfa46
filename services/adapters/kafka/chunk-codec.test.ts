import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PoisonMessageError } from '../../domain/errors.ts';
import type { DocumentChunks } from '../../domain/types.ts';
import { createChunkCodec } from './chunk-codec.ts';

const record: DocumentChunks = {
  tenant_id: 't1',
  document_id: 'doc-1',
  document_version: 1,
  acl_version: 1,
  acl: [],
  chunk_count: 0,
  model_key: 'hashing-384.v1',
  title: null,
  metadata: {},
  content_hash: 'ab'.repeat(32),
  created_at: '2025-01-02T03:04:05.123456+00:00',
  outbox_id: null,
  chunks: [],
};

function poisonWith(reason: string) {
  return (e: unknown) => e instanceof PoisonMessageError && e.reason === reason;
}

describe('chunk codec decode without a registry round trip', () => {
  // Nothing listens on port 9: these cases must be decided before any registry call.
  const codec = createChunkCodec('http://127.0.0.1:9/apis/ccompat/v7', { registryRetries: 0 });

  it('refuses bytes that are not the wire format as undecodable_avro', async () => {
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from([0, 0, 0]),
      Buffer.from('{"json":true}'),
      Buffer.from([1, 0, 0, 0, 1, 2]),
    ]) {
      await assert.rejects(codec.decode(bytes), poisonWith('undecodable_avro'));
    }
  });

  it('reports an unreachable registry as retriable, not as a poison message', async () => {
    await assert.rejects(
      codec.decode(Buffer.from([0, 0, 0, 0, 1, 2])),
      (e: unknown) => (e as { retriable?: boolean }).retriable === true,
    );
  });

  it('encode before register is a bug', async () => {
    await assert.rejects(codec.encode(record), /register/);
  });
});
