/**
 * The pgvector sink's health check: the database answers, and the `vector` extension is installed
 * in a version with iterative index scans (0.8.0), which filtered search relies on.
 */
import type pg from 'pg';
import { ConfigError, RetriableError } from '../../../domain/errors.ts';
import { toSinkError } from './errors.ts';
import { HEALTH_CHECK } from './sql.ts';

export const MIN_PGVECTOR_VERSION = '0.8.0';

/** -1, 0, 1 for dotted numeric versions (`0.10.0` > `0.8.0`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * Throws RetriableError when unreachable or not set up yet, CredentialsError when the role is
 * refused, ConfigError when pgvector is too old.
 */
export async function checkPgvectorHealth(pool: pg.Pool): Promise<{ pgvectorVersion: string }> {
  let rows: { extversion: string }[];
  try {
    rows = (await pool.query<{ extversion: string }>(HEALTH_CHECK)).rows;
  } catch (error) {
    // Unreachable → RetriableError, a refused role → CredentialsError; anything else as it is.
    throw toSinkError(error, 'health check');
  }
  const version = rows[0]?.extversion;
  if (version === undefined) {
    // The stack or `vecsync migrate` may still be setting the database up.
    throw new RetriableError(
      'pgvector sink: the vector extension is not installed in the sink database (run `vecsync migrate`)',
    );
  }
  if (compareVersions(version, MIN_PGVECTOR_VERSION) < 0) {
    throw new ConfigError(
      `pgvector sink: vector extension ${version} is too old; ${MIN_PGVECTOR_VERSION} or later is required (iterative index scans)`,
    );
  }
  return { pgvectorVersion: version };
}
