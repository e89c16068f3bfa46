/**
 * Avro codec of the chunk topic (`vecsync.chunks.<model key>`), schema `schemas/document-chunks.avsc`,
 * in the Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro body) through a
 * Confluent-compatible registry (Apicurio's `/apis/ccompat/v7`).
 *
 * Decoding tells apart what a retry can fix from what it cannot: a registry that does not answer
 * is a RetriableError; bytes that are not this wire format, a schema id the registry does not
 * know, or a body that does not decode are PoisonMessageError(`undecodable_avro`); a record that
 * decodes but breaks the record's invariants is PoisonMessageError(`invalid_chunk_record`).
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { ConfigError, PoisonMessageError, RetriableError, describeError } from '../core/errors.ts';
import type { DocumentChunks, EmbeddedChunk, JsonValue } from '../core/types.ts';

/** The schema, as registered. */
export const chunkSchema = JSON.parse(
  readFileSync(new URL('../../schemas/document-chunks.avsc', import.meta.url), 'utf8'),
) as { type: 'record'; name: string; namespace: string; doc: string; fields: { name: string }[] };

/** The reader type every decoded record is resolved to. */
export const chunkType = avro.Type.forSchema(chunkSchema as avro.Schema);

/** Compatibility level of the chunk subjects: consumers on the new schema read old records. */
export const CHUNK_COMPATIBILITY = COMPATIBILITY.BACKWARD;

/** Subject of a topic's values (TopicNameStrategy). */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

// --- record <-> Avro shape (pure) ---------------------------------------------------------------

interface AvroChunk {
  chunk_index: number;
  content: string;
  content_hash: string;
  embedding: Buffer;
}

/** A DocumentChunks as Avro holds it: metadata as JSON text, embeddings as float32 LE bytes. */
export interface AvroDocumentChunks extends Omit<DocumentChunks, 'metadata' | 'chunks'> {
  metadata: string;
  chunks: AvroChunk[];
}

const littleEndianHost = endianness() === 'LE';

/** float32 little-endian bytes of a vector. */
export function embeddingToBytes(vector: Float32Array | number[]): Buffer {
  const floats = vector instanceof Float32Array ? vector : Float32Array.from(vector);
  if (littleEndianHost)
    return Buffer.from(floats.buffer.slice(floats.byteOffset, floats.byteOffset + floats.byteLength));
  const out = Buffer.alloc(floats.length * 4);
  floats.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

/** The vector in float32 little-endian `bytes`; the length must be a multiple of 4. */
export function bytesToEmbedding(bytes: Buffer): Float32Array {
  // Copy: the slice avsc returns may be unaligned and shares the message's memory.
  if (littleEndianHost) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

export function toAvroRecord(record: DocumentChunks): AvroDocumentChunks {
  if (record.chunk_count !== record.chunks.length) {
    throw new TypeError(`chunk_count ${record.chunk_count} != ${record.chunks.length} chunks`);
  }
  return {
    ...record,
    metadata: JSON.stringify(record.metadata),
    chunks: record.chunks.map((c) => ({
      chunk_index: c.chunk_index,
      content: c.content,
      content_hash: c.content_hash,
      embedding: embeddingToBytes(c.embedding),
    })),
  };
}

function invalid(message: string): PoisonMessageError {
  return new PoisonMessageError('invalid_chunk_record', message);
}

/** Checks the invariants Avro cannot express and converts back. */
export function fromAvroRecord(value: AvroDocumentChunks): DocumentChunks {
  if (value.chunk_count !== value.chunks.length) {
    throw invalid(`chunk_count ${value.chunk_count} but ${value.chunks.length} chunks`);
  }
  let metadata: unknown;
  try {
    metadata = JSON.parse(value.metadata);
  } catch {
    throw invalid('metadata is not JSON');
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid('metadata is not a JSON object');
  }
  const bytes = value.chunks[0]?.embedding.length;
  const chunks = value.chunks.map((c, i): EmbeddedChunk => {
    if (c.chunk_index !== i) throw invalid(`chunk ${i} has chunk_index ${c.chunk_index}`);
    if (c.embedding.length === 0 || c.embedding.length % 4 !== 0 || c.embedding.length !== bytes) {
      throw invalid(`chunk ${i} has an embedding of ${c.embedding.length} bytes (first chunk: ${bytes})`);
    }
    return { ...c, embedding: bytesToEmbedding(c.embedding) };
  });
  return { ...value, metadata: metadata as { [key: string]: JsonValue }, chunks };
}

// --- registry codec -----------------------------------------------------------------------------

export interface ChunkCodec {
  /**
   * Registers the schema under `<topic>-value` with compatibility BACKWARD (set on first
   * registration, checked afterwards) and uses its id for `encode`. Idempotent.
   */
  register(topic: string): Promise<number>;
  /** Confluent wire format of the record; `register` must have been called. */
  encode(record: DocumentChunks): Promise<Buffer>;
  /** The validated record, resolved to this schema from whichever schema wrote it. */
  decode(buffer: Buffer): Promise<DocumentChunks>;
}

export interface ChunkCodecOptions {
  /** Retries of each registry request (the client's own backoff); default 3. */
  registryRetries?: number;
}

/** `registryUrl`: the Confluent-compatible base URL, e.g. `http://127.0.0.1:18081/apis/ccompat/v7`. */
export function createChunkCodec(registryUrl: string, options: ChunkCodecOptions = {}): ChunkCodec {
  const registry = new SchemaRegistry({ host: registryUrl, retry: { retries: options.registryRetries ?? 3 } });
  const resolvers = new Map<number, avro.Resolver>();
  let schemaId: number | undefined;

  const resolverFor = async (id: number): Promise<avro.Resolver> => {
    const known = resolvers.get(id);
    if (known) return known;
    let writer: unknown;
    try {
      writer = await registry.getSchema(id);
    } catch (error) {
      if (statusOf(error) === 404)
        throw new PoisonMessageError('undecodable_avro', `unknown schema id ${id}`, { cause: error });
      throw new RetriableError(`schema registry unavailable: ${describeError(error)}`, { cause: error });
    }
    let resolver: avro.Resolver;
    try {
      resolver = chunkType.createResolver(writer as avro.Type);
    } catch (error) {
      throw new PoisonMessageError('undecodable_avro', `schema id ${id} cannot be read as ${chunkType.name}`, {
        cause: error,
      });
    }
    resolvers.set(id, resolver);
    return resolver;
  };

  return {
    async register(topic) {
      const subject = valueSubject(topic);
      try {
        // Pinned first: the client sets the level only after a first registration, and a registry
        // answers the global level (Apicurio: NONE) for a subject without its own, so a crash in
        // between, or a subject created elsewhere, would make every later register() refuse.
        await pinCompatibility(registryUrl, subject);
        const { id } = await registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(chunkSchema) },
          { subject, compatibility: CHUNK_COMPATIBILITY },
        );
        schemaId = id;
        return id;
      } catch (error) {
        throw registryError(`registering ${subject}`, error);
      }
    },

    async encode(record) {
      if (schemaId === undefined) throw new Error('chunk codec: register(topic) before encode');
      return registry.encode(schemaId, toAvroRecord(record));
    },

    async decode(buffer) {
      if (buffer.length < 5 || buffer[0] !== 0) {
        throw new PoisonMessageError(
          'undecodable_avro',
          'not in the schema registry wire format (magic byte 0 + schema id)',
        );
      }
      const resolver = await resolverFor(buffer.readInt32BE(1));
      let value: AvroDocumentChunks;
      try {
        value = chunkType.fromBuffer(buffer.subarray(5), resolver) as AvroDocumentChunks;
      } catch (error) {
        throw new PoisonMessageError('undecodable_avro', `Avro body does not decode: ${describeError(error)}`, {
          cause: error,
        });
      }
      return fromAvroRecord(value);
    },
  };
}

/** `PUT /config/<subject>` with CHUNK_COMPATIBILITY (idempotent; allowed before the subject exists). */
async function pinCompatibility(registryUrl: string, subject: string): Promise<void> {
  const response = await fetch(`${registryUrl.replace(/\/+$/, '')}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: CHUNK_COMPATIBILITY }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) {
    throw Object.assign(new Error(`PUT /config/${subject}: ${response.status} ${await response.text()}`), {
      status: response.status,
    });
  }
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Registration failures: an incompatible schema (409), an invalid one (422), a mismatched
 * compatibility level or refused credentials are deployment mistakes that retrying cannot fix;
 * anything else is the registry being unavailable. (The registry client reports connection
 * failures as status 400, so 400 cannot be read as a refusal.)
 */
function registryError(what: string, error: unknown): Error {
  const name = (error as { name?: unknown } | null)?.name;
  const status = statusOf(error);
  if (name === 'ConfluentSchemaRegistryCompatibilityError' || [401, 403, 409, 422].includes(status ?? 0)) {
    return new ConfigError(`${what}: ${describeError(error)}`, { cause: error });
  }
  return new RetriableError(`${what}: schema registry unavailable: ${describeError(error)}`, { cause: error });
}
