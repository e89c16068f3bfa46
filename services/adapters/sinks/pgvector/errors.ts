/**
 * What a PostgreSQL error means for the pipeline, decided in one place from its SQLSTATE (or the
 * Node socket error code): the database is unavailable (retry later), one item's data was
 * rejected (isolate it, dead-letter it), or it is a bug (never retried, crashes loudly).
 */
import { PoisonMessageError, RetriableError } from '../../../domain/errors.ts';
import { codeOf, pgErrorKind } from '../../../domain/pg-errors.ts';

export type { PgErrorKind } from '../../../domain/pg-errors.ts';
/** The shared classification (services/core/pg-errors.ts), under the name this module's callers use. */
export const classifyPgError = pgErrorKind;

/**
 * The error to report for an item (or a whole batch): RetriableError when the database is
 * unavailable, PoisonMessageError(`sink_rejected`) for data it refuses, the error itself for bugs.
 */
export function toSinkError(error: unknown, what: string): unknown {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (classifyPgError(error)) {
    case 'unavailable':
      return new RetriableError(`pgvector sink unavailable (${what}): ${message}`, { cause: error });
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
