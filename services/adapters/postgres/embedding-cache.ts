/**
 * The embedder's hash cache (`vecsync.embedding_cache`): a chunk whose content hash and model are
 * unchanged is never embedded again, across restarts, replays and metadata-only edits.
 */
import type pg from 'pg';
import { classifyPgError } from '../../domain/pg-errors.ts';
import { prepared } from './pool.ts';

export function encodeVector(v: Float32Array): Buffer {
  // Copy: the Float32Array may be a view into a larger buffer.
  return Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

export function decodeVector(b: Buffer): Float32Array {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
}

const GET = `SELECT content_hash, embedding FROM vecsync.embedding_cache
  WHERE model_key = $1 AND content_hash = ANY($2::bytea[])`;
const PUT = `INSERT INTO vecsync.embedding_cache (model_key, content_hash, embedding)
  SELECT $1, h, e FROM unnest($2::bytea[], $3::bytea[]) AS u(h, e)
  ON CONFLICT DO NOTHING`;

export class EmbeddingCache {
  constructor(private readonly pool: pg.Pool) {}

  async get(modelKey: string, hashes: string[]): Promise<Map<string, Float32Array>> {
    const found = new Map<string, Float32Array>();
    if (hashes.length === 0) return found;
    try {
      const res = await this.pool.query<{ content_hash: Buffer; embedding: Buffer }>({
        ...prepared(GET),
        values: [modelKey, [...new Set(hashes)].map((h) => Buffer.from(h, 'hex'))],
      });
      for (const row of res.rows) found.set(row.content_hash.toString('hex'), decodeVector(row.embedding));
      return found;
    } catch (error) {
      throw classifyPgError(error, 'embedding cache');
    }
  }

  async put(modelKey: string, entries: Map<string, Float32Array>): Promise<void> {
    if (entries.size === 0) return;
    const hashes = [...entries.keys()];
    try {
      await this.pool.query({
        ...prepared(PUT),
        values: [modelKey, hashes.map((h) => Buffer.from(h, 'hex')), hashes.map((h) => encodeVector(entries.get(h)!))],
      });
    } catch (error) {
      throw classifyPgError(error, 'embedding cache');
    }
  }
}
