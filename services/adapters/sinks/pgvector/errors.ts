/**
 * What a PostgreSQL error means for the pipeline, decided in one place from its SQLSTATE (or the
 * Node socket error code): the database is unavailable (retry later), it refused the sink's role
 * (the service pauses, nothing is dead-lettered), one item's data was rejected (isolate it,
 * dead-letter it), or it is a bug (never retried, crashes loudly).
 */
import { PoisonMessageError, RetriableError } from '../../../domain/errors.ts';
import { codeOf, pgCredentialsError, pgErrorKind } from '../../../domain/pg-errors.ts';

export type { PgErrorKind } from '../../../domain/pg-errors.ts';
/** The shared classification (services/domain/pg-errors.ts), under the name this module's callers use. */
export const classifyPgError = pgErrorKind;

/**
 * The error to report for an item (or a whole batch): RetriableError when the database is
 * unavailable, CredentialsError(`pgvector`, `unauthorized` | `forbidden`) when it refuses the
 * sink's role, PoisonMessageError(`sink_rejected`) for data it refuses, the error itself for bugs.
 */
export function toSinkError(error: unknown, what: string): unknown {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (classifyPgError(error)) {
    case 'unavailable':
      return new RetriableError(`pgvector sink unavailable (${what}): ${message}`, { cause: error });
    case 'credentials':
      return pgCredentialsError(
        error,
        'pgvector',
        `pgvector sink refused our role (${what}, ${code}): ${message}; check the role of VECSYNC_PGVECTOR_URL`,
      );
    case 'data':
      return new PoisonMessageError(
        'sink_rejected',
        `pgvector rejected ${what} (${code ?? 'no sqlstate'}): ${message}`,
        {
          cause: error,
        },
      );
    case 'bug':
      return error;
  }
}
