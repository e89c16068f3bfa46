/** `vecsync models list`: the registry as operators see it, with the model each sink serves. */
import type pg from 'pg';
import type { Config } from '../../config/index.ts';
import { listModels, servingModel } from '../../adapters/postgres/models.ts';

/** One row of `models list --json` (the contract fields first). */
export interface ModelListing {
  model: string;
  embedder: string;
  dimensions: number;
  chunker: string;
  state: string;
  serving: boolean;
  name: string;
  version: number;
  chunker_version: number;
  chunk_size: number;
  chunk_overlap: number;
}

export async function modelListing(db: Pick<pg.Pool, 'query'>, config: Config): Promise<ModelListing[]> {
  const [models, serving] = await Promise.all([
    listModels(db),
    servingModel(db, config.sink.name, { name: config.embedder.model, version: config.embedder.version }),
  ]);
  return models.map((m) => ({
    model: m.modelKey,
    embedder: m.embedder,
    dimensions: m.dimensions,
    chunker: `${m.chunker}.v${m.chunkerVersion}`,
    state: m.state,
    serving: serving?.modelKey === m.modelKey,
    name: m.name,
    version: m.version,
    chunker_version: m.chunkerVersion,
    chunk_size: m.chunkSize,
    chunk_overlap: m.chunkOverlap,
  }));
}

export function formatModelListing(rows: ModelListing[]): string {
  const lines = rows.map(
    (r) =>
      `${r.serving ? '*' : ' '} ${r.model.padEnd(28)} ${r.embedder.padEnd(8)} ${String(r.dimensions).padStart(5)}  ${r.chunker.padEnd(20)} ${r.state}`,
  );
  return ['  model                        embedder   dims  chunker              state', ...lines, '(* serving)'].join(
    '\n',
  );
}
