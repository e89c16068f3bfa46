/**
 * The one place where retriability is decided. Every error that crosses a component boundary
 * is one of these, or is a bug (TypeError, RangeError, ...) that is never retried.
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
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The dependency is rate limiting us; wait `retryAfterMs` when given. */
export class RateLimitedError extends RetriableError {}

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

/** Anything else that is not one of ours is a bug: never retried, crashes loudly. */
export function isRetriable(error: unknown): boolean {
  return error instanceof VecsyncError && error.retriable;
}

export function isPoison(error: unknown): error is PoisonMessageError {
  return error instanceof PoisonMessageError;
}

/** A one-line description of any thrown value, for logs and DLQ headers. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}
