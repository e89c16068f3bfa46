/**
 * Schema migrations of both databases (node-pg-migrate, SQL files with `-- Up Migration` /
 * `-- Down Migration`), plus the two pieces of reference data `vecsync migrate` keeps in step
 * with the configuration: the metadata allowlist and the active embedding model.
 */
import path from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import type { Config } from '../../config/index.ts';
import { modelKey } from '../../domain/types.ts';
import { ConfigError, redactSecrets } from '../../domain/errors.ts';
import { createPool, databaseName, withTransaction, type Pool } from '../../adapters/postgres/pool.ts';
import { assetPath } from '../../domain/assets.ts';

const MIGRATIONS_ROOT = assetPath('migrations');

export const DATABASES = ['source', 'sink'] as const;
export type DatabaseRole = (typeof DATABASES)[number];

/** Where one database's migrations live and which schema they own. */
export interface MigrationTarget {
  role: DatabaseRole;
  url: string;
  dir: string;
  /** Schema of the tables, and of node-pg-migrate's own `pgmigrations` table. */
  schema: string;
}

export function migrationTargets(config: Pick<Config, 'sourceUrl' | 'sink'>): MigrationTarget[] {
  return [
    { role: 'source', url: config.sourceUrl, dir: path.join(MIGRATIONS_ROOT, 'source'), schema: 'vecsync' },
    { role: 'sink', url: config.sink.pgvector.url, dir: path.join(MIGRATIONS_ROOT, 'sink'), schema: 'vecsync_sink' },
  ];
}

/** The chunker `vecsync migrate` registers with a new embedding model. */
export const DEFAULT_CHUNKER = { name: 'recursive-char', version: 1 } as const;

export interface EmbeddingModelSpec {
  name: string;
  version: number;
  dimensions: number;
  chunker: string;
  chunkerVersion: number;
  chunkSize: number;
  chunkOverlap: number;
}

export function embeddingModelFromConfig(config: Pick<Config, 'embedder' | 'chunking'>): EmbeddingModelSpec {
  return {
    name: config.embedder.model,
    version: config.embedder.version,
    dimensions: config.embedder.dimensions,
    chunker: DEFAULT_CHUNKER.name,
    chunkerVersion: DEFAULT_CHUNKER.version,
    chunkSize: config.chunking.size,
    chunkOverlap: config.chunking.overlap,
  };
}

export interface DatabaseReport {
  database: string;
  /** The database did not exist and was created. */
  created: boolean;
  /** Names of the migrations run, in the order they ran. */
  applied: string[];
}

export interface MigrateReport {
  direction: 'up' | 'down';
  source?: DatabaseReport;
  sink?: DatabaseReport;
  metadataAllowlist?: { keys: string[]; added: string[]; removed: string[] };
  embeddingModel?: { key: string; registered: boolean };
  /** false: the run changed nothing at all. */
  changed: boolean;
}

export interface MigrateOptions {
  direction?: 'up' | 'down';
  /** Migrations to revert per database with direction 'down' (default 1; Infinity: all). */
  count?: number;
  /** Limit the run to one database. */
  only?: DatabaseRole;
  /** Progress lines (never stdout in --json mode). */
  log?: (line: string) => void;
}

/**
 * Creates missing databases, runs the pending migrations of the source and the sink database and,
 * going up, syncs the metadata allowlist and registers the configured embedding model.
 * Running it again changes nothing.
 */
export async function migrate(config: Config, options: MigrateOptions = {}): Promise<MigrateReport> {
  const direction = options.direction ?? 'up';
  const log = options.log ?? (() => undefined);
  const report: MigrateReport = { direction, changed: false };
  const targets = migrationTargets(config).filter((t) => options.only === undefined || t.role === options.only);
  // Down reverts in the opposite order of up: sink first, then source.
  if (direction === 'down') targets.reverse();

  for (const target of targets) {
    const created = direction === 'up' ? await ensureDatabase(target.url) : false;
    if (created) log(`${target.role}: created database ${databaseName(target.url)}`);
    const applied = await runMigrationDir(target, direction, direction === 'down' ? (options.count ?? 1) : undefined);
    log(
      `${target.role}: ${applied.length} migration${applied.length === 1 ? '' : 's'} ${direction === 'up' ? 'applied' : 'reverted'}${applied.length ? ` (${applied.join(', ')})` : ''}`,
    );
    report[target.role] = { database: databaseName(target.url), created, applied };
    if (created || applied.length > 0) report.changed = true;
  }

  if (direction === 'up' && options.only !== 'sink') {
    const pool = createPool(config.sourceUrl, { max: 1, applicationName: 'vecsync-migrate' });
    try {
      // The allowlist is an operator's decision: it changes only when VECSYNC_METADATA_ALLOWLIST is
      // set, or is seeded with the default on first install. An unset variable never widens (or
      // narrows) what an operator configured earlier.
      const firstInstall = report.source?.applied.includes(FIRST_SOURCE_MIGRATION) ?? false;
      const allowlist =
        config.metadataAllowlistGiven || firstInstall
          ? await syncMetadataAllowlist(pool, config.metadataAllowlist)
          : undefined;
      if (allowlist) report.metadataAllowlist = allowlist;
      if (!allowlist) {
        log('metadata allowlist left as it is (VECSYNC_METADATA_ALLOWLIST not set)');
      } else if (allowlist.added.length || allowlist.removed.length) {
        report.changed = true;
        log(`metadata allowlist: +[${allowlist.added.join(',')}] -[${allowlist.removed.join(',')}]`);
      } else {
        log('metadata allowlist unchanged');
      }
      const model = embeddingModelFromConfig(config);
      const registered = await registerEmbeddingModel(pool, model);
      report.embeddingModel = { key: modelKey(model.name, model.version), registered };
      if (registered) report.changed = true;
      log(`embedding model ${modelKey(model.name, model.version)} ${registered ? 'registered' : 'already registered'}`);
    } finally {
      await pool.end();
    }
  }
  return report;
}

/**
 * Creates the database of `url` when it is missing, through the `postgres` database of the same
 * server and credentials. Returns true when it created it.
 */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  const adminUrl = new URL(url);
  adminUrl.pathname = '/postgres';
  const client = new pg.Client({ connectionString: adminUrl.toString(), application_name: 'vecsync-migrate' });
  try {
    await client.connect();
  } catch (error) {
    throw new ConfigError(
      `cannot reach PostgreSQL at ${redactSecrets(adminUrl.toString())}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return true;
    } catch (error) {
      // Another migrate created it in the meantime.
      if ((error as { code?: string }).code === '42P04') return false;
      throw error;
    }
  } finally {
    await client.end();
  }
}

/** Runs one database's migrations; returns the names of those that ran. */
export async function runMigrationDir(
  target: MigrationTarget,
  direction: 'up' | 'down',
  count?: number,
): Promise<string[]> {
  const quiet = (): void => undefined;
  const ran = await runner({
    databaseUrl: target.url,
    dir: target.dir,
    direction,
    ...(count === undefined ? {} : { count }),
    schema: target.schema,
    createSchema: true,
    migrationsSchema: target.schema,
    createMigrationsSchema: true,
    migrationsTable: 'pgmigrations',
    // A migration numbered below one already run means the history diverged: refuse.
    checkOrder: true,
    singleTransaction: true,
    // Two migrates at once (CI and a developer, parallel tests) queue instead of failing.
    advisoryLockMode: 'wait',
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  });
  return ran.map((m) => m.name);
}

/** The migration that creates vecsync.metadata_allowlist: applied in this run = first install. */
const FIRST_SOURCE_MIGRATION = '0001_source-tables';

/** Makes vecsync.metadata_allowlist hold exactly `keys`. */
export async function syncMetadataAllowlist(
  pool: Pool,
  keys: readonly string[],
): Promise<{ keys: string[]; added: string[]; removed: string[] }> {
  const wanted = [...new Set(keys)].sort();
  return withTransaction(pool, async (client) => {
    const removed = await client.query<{ key: string }>(
      'DELETE FROM vecsync.metadata_allowlist WHERE NOT (key = ANY($1::text[])) RETURNING key',
      [wanted],
    );
    const added = await client.query<{ key: string }>(
      `INSERT INTO vecsync.metadata_allowlist (key) SELECT unnest($1::text[])
       ON CONFLICT (key) DO NOTHING RETURNING key`,
      [wanted],
    );
    return {
      keys: wanted,
      added: added.rows.map((r) => r.key).sort(),
      removed: removed.rows.map((r) => r.key).sort(),
    };
  });
}

/**
 * Registers `model` (state active) unless a row with its name and version exists. A registered
 * model whose dimensions or chunking differ from `model` is a configuration error: the same model
 * key must always mean the same vectors.
 */
export async function registerEmbeddingModel(pool: Pool, model: EmbeddingModelSpec): Promise<boolean> {
  const inserted = await pool.query(
    `INSERT INTO vecsync.embedding_models
       (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'active')
     ON CONFLICT (name, version) DO NOTHING`,
    [
      model.name,
      model.version,
      model.dimensions,
      model.chunker,
      model.chunkerVersion,
      model.chunkSize,
      model.chunkOverlap,
    ],
  );
  if (inserted.rowCount) return true;
  const existing = await pool.query<{
    dimensions: number;
    chunker: string;
    chunker_version: number;
    chunk_size: number;
    chunk_overlap: number;
  }>(
    `SELECT dimensions, chunker, chunker_version, chunk_size, chunk_overlap
       FROM vecsync.embedding_models WHERE name = $1 AND version = $2`,
    [model.name, model.version],
  );
  const row = existing.rows[0];
  if (row) {
    const mismatches: string[] = [];
    if (row.dimensions !== model.dimensions) {
      mismatches.push(`VECSYNC_EMBEDDING_DIMENSIONS=${model.dimensions} (registered: ${row.dimensions})`);
    }
    if (row.chunk_size !== model.chunkSize) {
      mismatches.push(`VECSYNC_CHUNK_SIZE=${model.chunkSize} (registered: ${row.chunk_size})`);
    }
    if (row.chunk_overlap !== model.chunkOverlap) {
      mismatches.push(`VECSYNC_CHUNK_OVERLAP=${model.chunkOverlap} (registered: ${row.chunk_overlap})`);
    }
    if (mismatches.length > 0) {
      throw new ConfigError(
        `embedding model ${modelKey(model.name, model.version)} is registered with other settings: ${mismatches.join(', ')}; ` +
          'register a new VECSYNC_EMBEDDING_VERSION instead of changing an existing one',
      );
    }
  }
  return false;
}
