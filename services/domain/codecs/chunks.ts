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
import avro from 'avsc';
import { PoisonMessageError } from '../errors.ts';
import type { DocumentChunks, EmbeddedChunk, JsonValue } from '../types.ts';
import { assetPath } from '../assets.ts';

/** The schema, as registered. */
export const chunkSchema = JSON.parse(readFileSync(assetPath('schemas', 'document-chunks.avsc'), 'utf8')) as {
  type: 'record';
  name: string;
  namespace: string;
  doc: string;
  fields: { name: string }[];
};

/** The reader type every decoded record is resolved to. */
export const chunkType = avro.Type.forSchema(chunkSchema as avro.Schema);

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
