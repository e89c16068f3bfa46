/**
 * Configuration of the pgvector sink. Each option is declared once, with its type, default and
 * documentation; `compilePgvectorConfig` is the one validating step, and its messages name the
 * bad field. Unknown keys are rejected, so a typo never silently falls back to a default.
 */
import { z } from 'zod';
import { setting } from '../../../domain/settings.ts';
import { ConfigError } from '../../../domain/errors.ts';

/** This sink's section of the root configuration (`config.sink.pgvector`). */
export const PGVECTOR_SETTINGS = {
  url: setting({
    env: 'VECSYNC_PGVECTOR_URL',
    schema: z.string().url(),
    default: (s) => `postgres://postgres@127.0.0.1:${s.VECSYNC_PG_PORT}/vecsync_vectors`,
    doc: 'PostgreSQL database with pgvector used by the pgvector sink.',
  }),
};

/** The part of the root configuration (`loadConfig()`) this sink reads. */
export interface PgvectorRootConfig {
  /** VECSYNC_SINK_NAME and this sink's section. */
  sink: { name: string; pgvector: { url: string } };
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const PGVECTOR_OPTIONS = z
  .object({
    /** Connection string of the sink database (VECSYNC_PGVECTOR_URL). */
    url: z.string().url(),
    /** This pipeline's sink instance (VECSYNC_SINK_NAME); every row carries it, every query filters by it. */
    sinkName: z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lowercase letters, digits, _; max 31'),
    /** Most connections the sink opens. A writer needs one per in-flight batch; searches need one each. */
    poolSize: int(1, 100).default(4),
    /** How long to wait for a connection before the operation fails as retriable. */
    connectTimeoutMs: int(100, 600_000).default(5_000),
    /**
     * Server-side limit of one statement. A batch write of 1,000 chunks into an HNSW index takes
     * about a second; a statement that runs out is reported as retriable.
     */
    statementTimeoutMs: int(1_000, 3_600_000).default(120_000),
    /** HNSW `m` of newly created model tables (existing tables keep theirs). */
    hnswM: int(2, 100).default(16),
    /** HNSW `ef_construction` of newly created model tables. */
    hnswEfConstruction: int(4, 1_000).default(64),
    /**
     * `hnsw.ef_search` of queries; raised to topK when smaller. With iterative scans (pgvector
     * 0.8, `relaxed_order`) a filtered query keeps scanning until it has topK rows anyway.
     */
    efSearch: int(1, 1_000).default(40),
    /** Most tuples one filtered query visits (`hnsw.max_scan_tuples`) before it settles for fewer than topK. */
    maxScanTuples: int(1_000, 10_000_000).default(20_000),
    /** Documents per page of `listDocuments`; memory stays bounded by one page. */
    listPageSize: int(1, 100_000).default(500),
  })
  .strict();

export type PgvectorOptions = z.input<typeof PGVECTOR_OPTIONS>;
export type PgvectorConfig = z.output<typeof PGVECTOR_OPTIONS>;

/** Validates options; throws ConfigError naming the first bad field. */
export function compilePgvectorConfig(options: PgvectorOptions): PgvectorConfig {
  const result = PGVECTOR_OPTIONS.safeParse(options);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : (issue?.code ?? 'options');
    const keys = issue && 'keys' in issue ? ` (${(issue.keys as string[]).join(', ')})` : '';
    throw new ConfigError(`invalid pgvector sink option ${field}${keys}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

/** The sink's configuration from the root config, with optional overrides (tests, tools). */
export function pgvectorConfigFrom(root: PgvectorRootConfig, overrides: Partial<PgvectorOptions> = {}): PgvectorConfig {
  return compilePgvectorConfig({ url: root.sink.pgvector.url, sinkName: root.sink.name, ...overrides });
}
