/**
 * What a PostgreSQL error means for the pipeline, decided in one place for every component that
 * talks to PostgreSQL (ledger, embedding cache, model registry, pgvector sink): the database is
 * unavailable (retry later), it refused our role (pause until the role works again, dead-letter
 * nothing), one item's data was rejected (isolate it, dead-letter it), or it is a bug (never
 * retried).
 */
import { CredentialsError, PoisonMessageError, RetriableError } from './errors.ts';

export type PgErrorKind = 'unavailable' | 'credentials' | 'data' | 'bug';

/**
 * The role was refused, so every statement fails alike and no message is at fault: class 28
 * (28000 invalid_authorization_specification, e.g. a role altered to NOLOGIN; 28P01
 * invalid_password) is `unauthorized`, 42501 insufficient_privilege (a revoked grant) is
 * `forbidden`.
 */
function credentialsReasonOf(code: string): 'unauthorized' | 'forbidden' | undefined {
  if (code.slice(0, 2) === '28') return 'unauthorized';
  if (code === '42501') return 'forbidden';
  return undefined;
}

const UNAVAILABLE_STATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovery)
  '25P03', // idle_in_transaction_session_timeout
  '58000', // system_error
  '58030', // io_error
]);

/** Classes: 08 connection exception, 53 insufficient resources (too many connections, disk full). */
const UNAVAILABLE_CLASSES = new Set(['08', '53']);

/** Classes: 22 data exception (bad dimensions, NUL byte, bad JSON), 23 integrity constraint, 54 program limit (row too big). */
const DATA_CLASSES = new Set(['22', '23', '54']);

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);

/** node-postgres reports lost connections and pool timeouts with messages, not codes. */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down|in recovery mode)/i;

export function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function pgErrorKind(error: unknown): PgErrorKind {
  if (error instanceof AggregateError) {
    // `connect` to a host with several addresses (localhost → ::1 and 127.0.0.1) fails with all of them.
    return error.errors.length > 0 && error.errors.every((e) => pgErrorKind(e) === 'unavailable')
      ? 'unavailable'
      : 'bug';
  }
  const code = codeOf(error);
  if (code !== undefined) {
    if (SOCKET_CODES.has(code)) return 'unavailable';
    // 55000 is also raised for other prerequisites; for a connection attempt it means the
    // database refuses connections for now (ALTER DATABASE ... ALLOW_CONNECTIONS false, maintenance).
    if (code === '55000' && error instanceof Error && /not currently accepting connections/.test(error.message)) {
      return 'unavailable';
    }
    if (/^[0-9A-Z]{5}$/.test(code)) {
      if (credentialsReasonOf(code) !== undefined) return 'credentials';
      if (UNAVAILABLE_STATES.has(code) || UNAVAILABLE_CLASSES.has(code.slice(0, 2))) return 'unavailable';
      if (DATA_CLASSES.has(code.slice(0, 2))) return 'data';
      return 'bug';
    }
  }
  if (error instanceof Error && UNAVAILABLE_MESSAGES.test(error.message)) return 'unavailable';
  return 'bug';
}

/** Why the role was refused, for an error `pgErrorKind` calls `credentials` (otherwise undefined). */
function pgCredentialsReason(error: unknown): 'unauthorized' | 'forbidden' | undefined {
  if (pgErrorKind(error) !== 'credentials') return undefined;
  return credentialsReasonOf(codeOf(error) ?? '');
}

/**
 * The CredentialsError of `dependency` (`postgres`, `pgvector`) for an error `pgErrorKind` calls
 * `credentials`. The message names the variable to check, never its value.
 */
export function pgCredentialsError(error: unknown, dependency: string, message: string): CredentialsError {
  return new CredentialsError(dependency, pgCredentialsReason(error) ?? 'unauthorized', message, { cause: error });
}

/**
 * Returns a RetriableError, CredentialsError (`postgres`: the source database refused our role) or
 * PoisonMessageError for known classes; otherwise the error itself.
 */
export function classifyPgError(error: unknown, what: string): unknown {
  const message = error instanceof Error ? error.message : String(error);
  switch (pgErrorKind(error)) {
    case 'unavailable':
      return new RetriableError(`${what} unavailable: ${message}`, { cause: error });
    case 'credentials':
      return pgCredentialsError(
        error,
        'postgres',
        `${what} refused our role (${codeOf(error)}): ${message}; check the role of VECSYNC_SOURCE_URL`,
      );
    case 'data':
      return new PoisonMessageError('sink_rejected', `${what}: ${message}`, { cause: error });
    case 'bug':
      return error;
  }
}
