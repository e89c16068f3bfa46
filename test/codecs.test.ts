/**
 * The chunk codec against the real schema registry of the stack (Apicurio, Confluent-compatible
 * API at `loadConfig().schemaRegistryUrl`). Each test registers its own subject. Without a stack
 * the tests skip loudly on a developer machine and fail under CI (`stackOrSkip`).
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { PoisonMessageError } from '../services/domain/errors.ts';
import type { DocumentChunks } from '../services/domain/types.ts';
import { createChunkCodec } from '../services/adapters/kafka/chunk-codec.ts';
import { chunkSchema, toAvroRecord, valueSubject } from '../services/domain/codecs/chunks.ts';
import { testIds } from './support/ids.ts';
import { stackOrSkip } from './support/stack.ts';

const record: DocumentChunks = {
  tenant_id: 'tenant-a',
  document_id: 'doc-1',
  document_version: 4,
  acl_version: 2,
  acl: ['alice', 'group:eng'],
  chunk_count: 2,
  model_key: 'hashing-384.v1',
  title: 'Codec test',
  metadata: { category: 'test', tags: ['x'] },
  content_hash: 'cd'.repeat(32),
  created_at: '2025-06-01T10:00:00.000001+00:00',
  outbox_id: 99,
  chunks: [0, 1].map((i) => ({
    chunk_index: i,
    content: `chunk ${i}`,
    content_hash: `${i}`.repeat(64),
    embedding: Float32Array.from({ length: 384 }, (_, d) => Math.sin(i + d)),
  })),
};

async function registryUrl(t: TestContext): Promise<string | undefined> {
  return (await stackOrSkip(t))?.schemaRegistryUrl;
}

describe('chunk codec with the schema registry', () => {
  it('embedders of one model starting at once all register its chunk schema', async (t) => {
    // Replicas of a new model's embedder pin the subject's compatibility at the same moment; the
    // registry creates the rule for one and answers the others 409 (the rule already exists).
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_concurrent');
    const ids = await Promise.all(Array.from({ length: 4 }, () => createChunkCodec(url).register(topic)));
    assert.equal(new Set(ids).size, 1, `one schema id for every replica: ${ids.join(', ')}`);
  });

  it('registers <topic>-value with compatibility BACKWARD, idempotently', async (t) => {
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_register');
    const id = await createChunkCodec(url).register(topic);
    assert.ok(Number.isInteger(id) && id > 0);
    assert.equal(await createChunkCodec(url).register(topic), id, 'same schema, same id');
    const config = await (await fetch(`${url}/config/${valueSubject(topic)}`)).json();
    assert.deepEqual(config, { compatibilityLevel: 'BACKWARD' });
  });

  it('round-trips a record in the Confluent wire format, decoded by a codec that never registered', async (t) => {
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_roundtrip');
    const producer = createChunkCodec(url);
    const id = await producer.register(topic);
    const bytes = await producer.encode(record);
    assert.equal(bytes[0], 0, 'magic byte');
    assert.equal(bytes.readInt32BE(1), id, 'schema id');
    assert.deepEqual(await createChunkCodec(url).decode(bytes), record);
  });

  it('reads records written with a newer, compatible schema (an added optional field)', async (t) => {
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_evolve');
    await createChunkCodec(url).register(topic);
    const evolved = {
      ...chunkSchema,
      fields: [...chunkSchema.fields, { name: 'language', type: ['null', 'string'], default: null }],
    };
    const registry = new SchemaRegistry({ host: url });
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(evolved) },
      { subject: valueSubject(topic) },
    );
    const bytes = await registry.encode(id, { ...toAvroRecord(record), language: 'en' });
    assert.deepEqual(await createChunkCodec(url).decode(bytes), record);
  });

  it('the registry refuses an incompatible change of the subject (BACKWARD is enforced)', async (t) => {
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_incompatible');
    await createChunkCodec(url).register(topic);
    const breaking = { ...chunkSchema, fields: [...chunkSchema.fields, { name: 'required_new', type: 'string' }] };
    await assert.rejects(
      new SchemaRegistry({ host: url }).register(
        { type: SchemaType.AVRO, schema: JSON.stringify(breaking) },
        { subject: valueSubject(topic) },
      ),
    );
  });

  it('recovers a subject left without its own compatibility level', async (t) => {
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_unpinned');
    // As if a previous registration crashed before setting the level: the subject exists and
    // inherits the registry's global level.
    const created = await fetch(`${url}/subjects/${valueSubject(topic)}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(chunkSchema) }),
    });
    assert.equal(created.status, 200);
    const id = await createChunkCodec(url).register(topic);
    assert.ok(id > 0);
  });

  it('an unknown schema id or a truncated body is a poison message', async (t) => {
    const url = await registryUrl(t);
    if (!url) return;
    const { topic } = testIds('codec_poison');
    const codec = createChunkCodec(url);
    await codec.register(topic);
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 1, 2, 3]);
    await assert.rejects(
      codec.decode(unknownId),
      (e: unknown) =>
        e instanceof PoisonMessageError && e.reason === 'undecodable_avro' && /unknown schema id/.test(e.message),
    );
    const bytes = await codec.encode(record);
    await assert.rejects(
      codec.decode(bytes.subarray(0, bytes.length - 100)),
      (e: unknown) => e instanceof PoisonMessageError && e.reason === 'undecodable_avro',
    );
  });
});
