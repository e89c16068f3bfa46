/**
 * Request-level retries (one call to a dependency, e.g. an embedding request): a bounded number of
 * attempts with jittered exponential backoff (p-retry), retrying exactly the errors the error
 * hierarchy calls retriable, then surfacing the last error. (The consumer's message-level policy,
 * which retries retriable errors until they succeed, is services/kafka/retry-policy.ts.)
 *
 * A wait the dependency asked for (`RetriableError.retryAfterMs`, e.g. Retry-After on a 429) is
 * honoured; one longer than the policy's `maxMs` ends the retries instead, so the caller can pause
 * at a higher level (a consumer pausing its partition) rather than hold a request slot.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { RetriableError, isRetriable } from './errors.ts';

/** From `config.retry` (`VECSYNC_RETRY_*`). */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** First backoff; doubles per attempt, times a random factor in [1, 2). */
  initialMs: number;
  /** Largest backoff, and the longest Retry-After that is waited for here. */
  maxMs: number;
}

export interface RetryOptions extends RetryPolicy {
  /** Stops retrying (and any wait) when aborted; the abort reason is thrown. */
  signal?: AbortSignal | undefined;
  /** Called before each retry: for logs and metrics. */
  onRetry?: ((info: { error: Error; attempt: number; retriesLeft: number }) => void) | undefined;
}

/** Runs `operation` until it succeeds, fails with a non-retriable error, or attempts run out. */
export function withRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { maxAttempts, initialMs, maxMs, signal, onRetry } = options;
  const retryAfter = (error: Error): number | undefined =>
    error instanceof RetriableError ? error.retryAfterMs : undefined;
  const willRetry = (error: Error): boolean => isRetriable(error) && (retryAfter(error) ?? 0) <= maxMs;
  return pRetry(operation, {
    retries: Math.max(0, maxAttempts - 1),
    factor: 2,
    minTimeout: initialMs,
    maxTimeout: maxMs,
    randomize: true,
    signal,
    shouldRetry: ({ error }) => willRetry(error),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft === 0 || !willRetry(error)) return;
      onRetry?.({ error, attempt: attemptNumber, retriesLeft });
      const wait = retryAfter(error);
      // p-retry adds its own backoff after this, so the total wait is at least what was asked.
      if (wait !== undefined && wait > 0) await sleep(wait, undefined, { signal });
    },
  });
}
