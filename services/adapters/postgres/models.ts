/**
 * The embedding model registry (`vecsync.embedding_models`), read by the services. Every service
 * that needs "which indexes exist" asks here, so blue/green re-embedding changes one table.
 */
import type pg from 'pg';
import { modelKey } from '../../domain/types.ts';
import { classifyPgError } from '../../domain/pg-errors.ts';
import type { IndexSpec } from '../sinks/types.ts';

export const ModelState = {
  active: 'active',
  backfilling: 'backfilling',
  /** Backfilled, kept in step, waiting for a cutover. */
  ready: 'ready',
  retired: 'retired',
} as const;
export type ModelState = (typeof ModelState)[keyof typeof ModelState];

export interface EmbeddingModel extends IndexSpec {
  name: string;
  version: number;
  chunker: string;
  chunkerVersion: number;
  chunkSize: number;
  chunkOverlap: number;
  state: ModelState;
  /** The embedding provider that made it (`hashing`, `openai`, `minilm`, ...). */
  embedder: string;
}

const MODEL_COLUMNS = 'name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state, embedder';

interface ModelRow {
  name: string;
  version: number;
  dimensions: number;
  chunker: string;
  chunker_version: number;
  chunk_size: number;
  chunk_overlap: number;
  state: ModelState;
  embedder: string | null;
}

function modelFromRow(r: ModelRow): EmbeddingModel {
  return {
    modelKey: modelKey(r.name, r.version),
    dimensions: r.dimensions,
    name: r.name,
    version: r.version,
    chunker: r.chunker,
    chunkerVersion: r.chunker_version,
    chunkSize: r.chunk_size,
    chunkOverlap: r.chunk_overlap,
    state: r.state,
    embedder: r.embedder ?? embedderOfModel(r.name),
  };
}

/** The provider a model name implies when its registration does not say (mirrors SQL `embedder_of_model`). */
export function embedderOfModel(name: string): string {
  if (name.startsWith('hashing')) return 'hashing';
  if (name.startsWith('minilm')) return 'minilm';
  return 'openai';
}

type Queryable = Pick<pg.Pool, 'query'>;

/** Every registered model, ordered by name and version. */
export async function listModels(db: Queryable): Promise<EmbeddingModel[]> {
  try {
    const res = await db.query<ModelRow>(
      `SELECT ${MODEL_COLUMNS} FROM vecsync.embedding_models ORDER BY name, version`,
    );
    return res.rows.map(modelFromRow);
  } catch (error) {
    throw classifyPgError(error, 'model registry');
  }
}

/** One model, or undefined. */
export async function getModel(db: Queryable, name: string, version: number): Promise<EmbeddingModel | undefined> {
  const res = await db.query<ModelRow>(
    `SELECT ${MODEL_COLUMNS} FROM vecsync.embedding_models WHERE name = $1 AND version = $2`,
    [name, version],
  );
  return res.rows[0] ? modelFromRow(res.rows[0]) : undefined;
}

export interface NewModel {
  name: string;
  version: number;
  dimensions: number;
  chunker: string;
  chunkerVersion: number;
  chunkSize: number;
  chunkOverlap: number;
  embedder: string;
  state: ModelState;
}

/** Registers a model; a row with that name and version already there is an error (keys are immutable). */
export async function registerModel(db: Queryable, m: NewModel): Promise<EmbeddingModel> {
  await db.query(
    `INSERT INTO vecsync.embedding_models
       (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state, embedder)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [m.name, m.version, m.dimensions, m.chunker, m.chunkerVersion, m.chunkSize, m.chunkOverlap, m.state, m.embedder],
  );
  return (await getModel(db, m.name, m.version))!;
}

export async function setModelState(db: Queryable, key: { name: string; version: number }, state: ModelState) {
  await db.query('UPDATE vecsync.embedding_models SET state = $3 WHERE name = $1 AND version = $2', [
    key.name,
    key.version,
    state,
  ]);
}

/**
 * The model a sink serves (the one search reads): its `model_serving` row, or, without one, the
 * configured model `fallback`. Undefined when neither is registered.
 */
export async function servingModel(
  db: Queryable,
  sinkName: string,
  fallback: { name: string; version: number },
): Promise<EmbeddingModel | undefined> {
  const res = await db.query<{ model_name: string; model_version: number }>(
    'SELECT model_name, model_version FROM vecsync.model_serving WHERE sink_name = $1',
    [sinkName],
  );
  const row = res.rows[0];
  return row ? getModel(db, row.model_name, row.model_version) : getModel(db, fallback.name, fallback.version);
}

/** Makes `model` the one `sinkName` serves: one row, one statement, so every reader switches at once. */
export async function setServing(db: Queryable, sinkName: string, model: { name: string; version: number }) {
  await db.query(
    `INSERT INTO vecsync.model_serving (sink_name, model_name, model_version, switched_at)
     VALUES ($1, $2, $3, now())
     ON CONFLICT (sink_name) DO UPDATE
       SET model_name = EXCLUDED.model_name, model_version = EXCLUDED.model_version, switched_at = now()`,
    [sinkName, model.name, model.version],
  );
}

/** Caches the table; `refresh()` on a miss, so a model registered after start is found. */
export class ModelRegistry {
  private models = new Map<string, EmbeddingModel>();
  private loadedAt = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly maxAgeMs = 30_000,
  ) {}

  async refresh(): Promise<void> {
    try {
      const res = await this.pool.query<{
        name: string;
        version: number;
        dimensions: number;
        chunker: string;
        chunker_version: number;
        chunk_size: number;
        chunk_overlap: number;
        state: ModelState;
        embedder: string | null;
      }>(`SELECT ${MODEL_COLUMNS} FROM vecsync.embedding_models`);
      this.models = new Map(res.rows.map((r) => [modelKey(r.name, r.version), modelFromRow(r)]));
      this.loadedAt = Date.now();
    } catch (error) {
      throw classifyPgError(error, 'model registry');
    }
  }

  /** The model, refreshing once if it is unknown or the cache is old; undefined if it does not exist. */
  async get(key: string): Promise<EmbeddingModel | undefined> {
    if (!this.models.has(key) || Date.now() - this.loadedAt > this.maxAgeMs) await this.refresh();
    return this.models.get(key);
  }

  /** Every model whose index must follow deletes and ACL changes (all but retired). */
  async live(): Promise<EmbeddingModel[]> {
    if (Date.now() - this.loadedAt > this.maxAgeMs) await this.refresh();
    return [...this.models.values()].filter((m) => m.state !== ModelState.retired);
  }
}
