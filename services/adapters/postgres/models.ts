/**
 * The embedding model registry (`vecsync.embedding_models`), read by the services. Every service
 * that needs "which indexes exist" asks here, so blue/green re-embedding changes one table.
 */
import type pg from 'pg';
import { modelKey } from '../../domain/types.ts';
import { classifyPgError } from '../../domain/pg-errors.ts';
import type { IndexSpec } from '../sinks/types.ts';

export const ModelState = { active: 'active', backfilling: 'backfilling', retired: 'retired' } as const;
export type ModelState = (typeof ModelState)[keyof typeof ModelState];

export interface EmbeddingModel extends IndexSpec {
  name: string;
  version: number;
  chunker: string;
  chunkerVersion: number;
  chunkSize: number;
  chunkOverlap: number;
  state: ModelState;
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
      }>(
        'SELECT name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state FROM vecsync.embedding_models',
      );
      this.models = new Map(
        res.rows.map((r) => {
          const key = modelKey(r.name, r.version);
          return [
            key,
            {
              modelKey: key,
              dimensions: r.dimensions,
              name: r.name,
              version: r.version,
              chunker: r.chunker,
              chunkerVersion: r.chunker_version,
              chunkSize: r.chunk_size,
              chunkOverlap: r.chunk_overlap,
              state: r.state,
            },
          ];
        }),
      );
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
