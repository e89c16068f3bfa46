/**
 * Hybrid search on pgvector (`vecsync search --hybrid`): the kNN of `searchSql` and a PostgreSQL
 * full-text search over the chunk text the sink already stores (`title`, `content`), each with the
 * same sink, tenant and principal filter, fused by reciprocal rank fusion:
 *
 *   score(chunk) = Σ over lists containing it of 1 / (k + rank)      (rank from 1; k = 60 by default)
 *
 * Both candidate lists run in one read-only transaction (one snapshot). The tsvector is computed
 * at query time (`to_tsvector(config, title || ' ' || content)`), restricted first by the
 * (sink, tenant) btree, so no column or index is needed in the chunk tables.
 */
import pg from 'pg';
import { ConfigError } from '../../../domain/errors.ts';
import type { PgvectorConfig } from './config.ts';
import { encodeVector } from './encoding.ts';
import { ACL_TABLE, chunkTableNames, type ChunkTableNames } from './naming.ts';
import { searchSettings, DESCRIBE_TABLE } from './sql.ts';

/** RRF's k: 60 in Cormack et al. (2009), and the common default since. */
export const RRF_K = 60;
const MAX_CANDIDATES = 1000;

export interface RankedHit {
  documentId: string;
  chunkIndex: number;
  content?: string;
}

export interface FusedHit {
  documentId: string;
  chunkIndex: number;
  score: number;
  /** 1-based rank in the vector list, null when absent from it. */
  vectorRank: number | null;
  /** 1-based rank in the full-text list, null when absent from it. */
  textRank: number | null;
  content?: string;
}

/**
 * Reciprocal rank fusion of two ranked lists (best first), pure. Ties are broken by document id
 * and chunk index, so the order is deterministic.
 */
export function reciprocalRankFusion(vector: RankedHit[], text: RankedHit[], k = RRF_K, topK = Infinity): FusedHit[] {
  const fused = new Map<string, FusedHit>();
  const add = (list: RankedHit[], which: 'vectorRank' | 'textRank') =>
    list.forEach((hit, i) => {
      const key = `${hit.documentId}#${hit.chunkIndex}`;
      let f = fused.get(key);
      if (!f) {
        f = { documentId: hit.documentId, chunkIndex: hit.chunkIndex, score: 0, vectorRank: null, textRank: null };
        if (hit.content !== undefined) f.content = hit.content;
        fused.set(key, f);
      }
      if (f[which] !== null) return; // a list repeating a chunk counts once, at its best rank
      f[which] = i + 1;
      f.score += 1 / (k + i + 1);
    });
  add(vector, 'vectorRank');
  add(text, 'textRank');
  return [...fused.values()]
    .sort(
      (a, b) =>
        b.score - a.score ||
        (a.documentId < b.documentId ? -1 : a.documentId > b.documentId ? 1 : 0) ||
        a.chunkIndex - b.chunkIndex,
    )
    .slice(0, topK);
}

const JOIN_ACL = `JOIN ${ACL_TABLE} AS a
    ON a.sink_name = c.sink_name AND a.tenant_id = c.tenant_id AND a.document_id = c.document_id`;
/** The one filter of every search: this sink, this tenant, documents whose ACL lists the principal. */
const WHERE_VISIBLE = `c.sink_name = $2 AND c.tenant_id = $3 AND a.acl @> ARRAY[$4::text]`;

/** kNN candidates. $1 vector, $2 sink, $3 tenant, $4 principal, $5 limit. */
export function hybridVectorSql(names: ChunkTableNames): string {
  return `WITH relaxed AS MATERIALIZED (
  SELECT c.document_id, c.chunk_index, c.content, c.embedding <=> $1::vector AS distance
  FROM ${names.qualified} AS c
  ${JOIN_ACL}
  WHERE ${WHERE_VISIBLE}
  ORDER BY distance
  LIMIT $5
)
SELECT document_id, chunk_index, content FROM relaxed ORDER BY distance, document_id, chunk_index`;
}

/**
 * Full-text candidates, best `ts_rank_cd` first. $1 query text (websearch syntax: words, "phrases",
 * -exclusions, or), $2 sink, $3 tenant, $4 principal, $5 limit, $6 text search configuration.
 */
export function hybridTextSql(names: ChunkTableNames): string {
  return `SELECT c.document_id, c.chunk_index, c.content,
       ts_rank_cd(to_tsvector($6::regconfig, c.title || ' ' || c.content), q.query) AS rank
  FROM ${names.qualified} AS c
  ${JOIN_ACL}
  CROSS JOIN websearch_to_tsquery($6::regconfig, $1) AS q(query)
  WHERE ${WHERE_VISIBLE}
    AND to_tsvector($6::regconfig, c.title || ' ' || c.content) @@ q.query
  ORDER BY rank DESC, c.document_id, c.chunk_index
  LIMIT $5`;
}

export interface HybridQuery {
  modelKey: string;
  tenantId: string;
  principal: string;
  vector: Float32Array;
  text: string;
  topK: number;
  /** Candidates taken from each list before fusion (default max(4 × topK, 20), at most 1000). */
  candidates?: number;
  /** PostgreSQL text search configuration (default `simple`: no stemming, any language). */
  textSearchConfig?: string;
  rrfK?: number;
}

/** Hybrid search over one pgvector sink, on its own small pool (reads only). */
export class PgvectorHybridSearch {
  readonly #config: PgvectorConfig;
  readonly #pool: pg.Pool;

  constructor(config: PgvectorConfig) {
    this.#config = config;
    this.#pool = new pg.Pool({
      connectionString: config.url,
      max: 2,
      connectionTimeoutMillis: config.connectTimeoutMs,
      statement_timeout: config.statementTimeoutMs,
      application_name: `vecsync-hybrid-${config.sinkName}`,
    });
    this.#pool.on('error', () => undefined);
  }

  async search(query: HybridQuery): Promise<FusedHit[]> {
    if (!Number.isInteger(query.topK) || query.topK < 1 || query.topK > MAX_CANDIDATES)
      throw new ConfigError(`search: topK must be an integer in [1, ${MAX_CANDIDATES}], got ${query.topK}`);
    if (!query.tenantId || !query.principal) throw new ConfigError('search: tenant and principal are required');
    if (!(query.vector instanceof Float32Array) || !query.vector.every(Number.isFinite))
      throw new ConfigError('search: the query vector must be a Float32Array of finite numbers');
    const candidates = Math.min(MAX_CANDIDATES, query.candidates ?? Math.max(4 * query.topK, 20));
    const names = chunkTableNames(query.modelKey);
    const client = await this.#pool.connect();
    try {
      const table = (await client.query<{ dimensions: number | null }>(DESCRIBE_TABLE, [names.table])).rows[0];
      if (!table)
        throw new ConfigError(
          `search: the pgvector sink has no index for model ${query.modelKey} (nothing written yet?)`,
        );
      if (table.dimensions !== query.vector.length)
        throw new ConfigError(
          `search: the query vector has ${query.vector.length} dimensions, model ${query.modelKey} has ${table.dimensions}`,
        );
      const efSearch = Math.min(1000, Math.max(this.#config.efSearch, candidates));
      await client.query(searchSettings(efSearch, this.#config.maxScanTuples));
      try {
        type Row = { document_id: string; chunk_index: number; content: string };
        const filter = [this.#config.sinkName, query.tenantId, query.principal, candidates];
        const vector = await client.query<Row>(hybridVectorSql(names), [encodeVector(query.vector), ...filter]);
        const text = await client.query<Row>(hybridTextSql(names), [
          query.text,
          ...filter,
          query.textSearchConfig ?? 'simple',
        ]);
        await client.query('COMMIT');
        const ranked = (rows: Row[]) =>
          rows.map((r) => ({ documentId: r.document_id, chunkIndex: r.chunk_index, content: r.content }));
        return reciprocalRankFusion(ranked(vector.rows), ranked(text.rows), query.rrfK ?? RRF_K, query.topK);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
