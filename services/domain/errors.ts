/**
 * The one place where retriability is decided. Every error that crosses a component boundary is
 * one of these classes, and `classify(error)` turns any thrown value into one decision that both
 * retry wrappers (the request-level `withRetry`, the consumer's `withMessageRetry`) and the
 * dead-letter reason read. Nothing else looks at error classes to decide whether to retry.
 */

export abstract class VecsyncError extends Error {
  /** true: the same operation may succeed later; false: it never will. */
  abstract readonly retriable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A dependency (sink, embedding API, database, broker) is unavailable right now. */
export class RetriableError extends VecsyncError {
  readonly retriable = true;
  /** How long the dependency asked us to wait, when it said so (e.g. Retry-After on a 429). */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The dependency is rate limiting us; wait `retryAfterMs` when given. */
export class RateLimitedError extends RetriableError {}

/**
 * A dependency refused our credentials (HTTP 401/403, a rotated API key). Every message would fail
 * the same way, and none of them is at fault: the service pauses (retries with backoff until the
 * key works again) and nothing is dead-lettered. `dependency` names what refused (`openai`,
 * `pinecone`), `reason` is `unauthorized` or `forbidden`.
 */
export class CredentialsError extends RetriableError {
  constructor(
    readonly dependency: string,
    readonly reason: 'unauthorized' | 'forbidden',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The message itself is bad: it will fail the same way on every attempt. It goes to the
 * dead-letter topic with `reason` (a short machine-readable code) and the message.
 */
export class PoisonMessageError extends VecsyncError {
  readonly retriable = false;
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${reason}: ${message}`, options);
  }
}

/** Bad configuration or command-line input: reported as one line, exit code non-zero. */
export class ConfigError extends VecsyncError {
  readonly retriable = false;
}

/** What to do about an error. One decision, read by every retry loop and by the dead-letter path. */
export type ErrorClass =
  /** A dependency is down: retry with backoff, without limit in the consumer (an outage is not poison). */
  | { kind: 'retriable'; reason: 'unavailable' }
  /** Retry after `waitMs` (the dependency said so), or with backoff when it did not. */
  | { kind: 'rate_limited'; reason: 'rate_limited'; waitMs: number | undefined }
  /** Our credentials were refused: pause the service (retry with backoff), never dead-letter. */
  | { kind: 'credentials'; reason: 'unauthorized' | 'forbidden'; dependency: string }
  /** The input can never succeed: dead-letter it at once with `reason`. */
  | { kind: 'poison'; reason: string }
  /** A programming error (TypeError, ...): never retried; dead-lettered as `programming_error`. */
  | { kind: 'bug'; reason: 'programming_error' }
  /** Not ours and not a bug: a few attempts (the policy's `maxAttempts`), then dead-lettered. */
  | { kind: 'unknown'; reason: 'unexpected_error' };

const PROGRAMMING_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError];

export function classify(error: unknown): ErrorClass {
  if (error instanceof CredentialsError) {
    return { kind: 'credentials', reason: error.reason, dependency: error.dependency };
  }
  if (error instanceof RateLimitedError)
    return { kind: 'rate_limited', reason: 'rate_limited', waitMs: error.retryAfterMs };
  if (error instanceof RetriableError) {
    return error.retryAfterMs === undefined
      ? { kind: 'retriable', reason: 'unavailable' }
      : { kind: 'rate_limited', reason: 'rate_limited', waitMs: error.retryAfterMs };
  }
  if (error instanceof PoisonMessageError) return { kind: 'poison', reason: error.reason };
  if (PROGRAMMING_ERRORS.some((kind) => error instanceof kind)) return { kind: 'bug', reason: 'programming_error' };
  return { kind: 'unknown', reason: 'unexpected_error' };
}

/** Retriable, rate limited and credential errors: the same operation may succeed later. */
export function isRetriable(error: unknown): boolean {
  const { kind } = classify(error);
  return kind === 'retriable' || kind === 'rate_limited' || kind === 'credentials';
}

export function isPoison(error: unknown): error is PoisonMessageError {
  return classify(error).kind === 'poison';
}

/** The machine-readable reason of a failure, as used in DLQ headers, metrics and `dlq list`. */
export function reasonOf(error: unknown): string {
  return classify(error).reason;
}

/** Exact secret values (API keys, URL passwords) that must never be printed, registered by config. */
const knownSecrets = new Set<string>();

/** Registers a secret value (at least 4 characters) so `redactSecrets` removes it wherever it appears. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) knownSecrets.add(value);
}

const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s/:@]*):[^\s/]*@/gi;
const KEYWORD_PASSWORD = /(password\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)/gi;
const BEARER = /(bearer\s+)[A-Za-z0-9._~+/=-]+/gi;

/**
 * Text with secrets removed: the password of any `scheme://user:password@host` URL (valid or not),
 * `password=...` pairs, bearer tokens, and every registered secret value. Used for every error
 * line (describeError), the logger and `vecsync config`.
 */
export function redactSecrets(text: string): string {
  let out = text.replace(URL_USERINFO, '$1$2:***@').replace(KEYWORD_PASSWORD, '$1***').replace(BEARER, '$1***');
  for (const secret of knownSecrets) if (out.includes(secret)) out = out.split(secret).join('***');
  return out;
}

/** A one-line description of any thrown value, for logs and DLQ headers; secrets redacted. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return redactSecrets(error.message.split('\n')[0] ?? error.name);
  return redactSecrets(String(error));
}
