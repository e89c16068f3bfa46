/**
 * PostgreSQL errors mapped onto the retriability hierarchy, in one place for every component that
 * talks to PostgreSQL (ledger, pgvector sink, embedding cache).
 */
import { PoisonMessageError, RetriableError } from './errors.ts';

const RETRIABLE_SQLSTATE_CLASSES = ['08', '53', '57', '58'];
const RETRIABLE_SQLSTATES = new Set(['40001', '40P01', '55P03', '55006']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** Data errors caused by one item's content: retrying cannot help. */
const DATA_SQLSTATE_CLASSES = ['22', '23'];

interface PgLike {
  code?: string;
  message?: string;
}

/** Returns a RetriableError or PoisonMessageError for known classes; otherwise the error itself. */
export function classifyPgError(error: unknown, what: string): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as PgLike).code ?? '';
  const message = error.message;
  if (
    NETWORK_CODES.has(code) ||
    RETRIABLE_SQLSTATES.has(code) ||
    RETRIABLE_SQLSTATE_CLASSES.includes(code.slice(0, 2)) ||
    /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
      message,
    )
  ) {
    return new RetriableError(`${what} unavailable: ${message}`, { cause: error });
  }
  if (code.length === 5 && DATA_SQLSTATE_CLASSES.includes(code.slice(0, 2))) {
    return new PoisonMessageError('sink_rejected', `${what}: ${message}`, { cause: error });
  }
  return error;
}
