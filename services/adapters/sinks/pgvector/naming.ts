/**
 * Names of the sink's tables and indexes. Pure: the same model key always maps to the same
 * table, on every machine, so blue/green indexes of two model versions never share a table.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { ConfigError } from '../../../domain/errors.ts';

export const SINK_SCHEMA = 'vecsync_sink';

/** PostgreSQL truncates identifiers at 63 bytes; the longest suffix we add is `_hnsw`. */
const MAX_TABLE_NAME = 58;
const MODEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export interface ChunkTableNames {
  /** Bare table name, e.g. `chunks_hashing_384_v1`. */
  table: string;
  /** Schema-qualified, quoted, ready for SQL text. */
  qualified: string;
  hnswIndex: string;
  documentIndex: string;
}

/**
 * `hashing-384.v1` → `chunks_hashing_384_v1`. Model keys that do not fit an identifier keep a
 * readable prefix and get a hash of the full key, so two long keys never share a table (the table
 * comment records the key, and `ensureIndex` checks it too).
 */
export function chunkTableName(modelKey: string): string {
  if (!MODEL_KEY.test(modelKey)) {
    throw new ConfigError(
      `invalid model key ${JSON.stringify(modelKey)}: expected <name>.v<version> (letters, digits, . _ -)`,
    );
  }
  const table = `chunks_${modelKey.toLowerCase().replace(/[^a-z0-9]/g, '_')}`;
  if (table.length <= MAX_TABLE_NAME) return table;
  const hash = createHash('sha256').update(modelKey).digest('hex').slice(0, 8);
  return `${table.slice(0, MAX_TABLE_NAME - hash.length - 1)}_${hash}`;
}

export function chunkTableNames(modelKey: string): ChunkTableNames {
  const table = chunkTableName(modelKey);
  return {
    table,
    qualified: qualify(table),
    hnswIndex: `${table}_hnsw`,
    documentIndex: `${table}_doc`,
  };
}

export function qualify(name: string): string {
  return `${pg.escapeIdentifier(SINK_SCHEMA)}.${pg.escapeIdentifier(name)}`;
}

export const ACL_TABLE = qualify('document_acl');

/** The sink's fence (see `../fence.ts`): one row per sink, tenant, document and model. */
export const FENCE_TABLE = qualify('document_fence');

/** The comment `ensureIndex` puts on a model table, and checks on an existing one. */
export function tableComment(modelKey: string): string {
  return `vecsync chunks of model ${modelKey}`;
}
