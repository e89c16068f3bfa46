/**
 * Request-level retries (one call to a dependency, e.g. an embedding request): a bounded number of
 * attempts with jittered exponential backoff (p-retry), retrying what `classify` calls retriable
 * or rate limited, then surfacing the last error (a credentials failure surfaces at once). (The consumer's
 * message-level policy, which retries those until they succeed, is adapters/kafka/retry-policy.ts.)
 *
 * A wait the dependency asked for (`RetriableError.retryAfterMs`, e.g. Retry-After on a 429) is
 * honoured; one longer than the policy's `maxMs` ends the retries instead, so the caller can pause
 * at a higher level (a consumer pausing its partition) rather than hold a request slot.
 *
 * `sleep` is the one abortable wait of the code base.
 */
import pRetry from 'p-retry';
import { classify } from './errors.ts';

/** From `config.retry` (`VECSYNC_RETRY_*`). */
export interface RetryPolicy {
  /** Attempts in all, the first included (for errors `classify` calls `unknown`, in the consumer). */
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

/** Waits `ms`, or rejects with the abort reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The wait a dependency asked for, if `classify` found one. */
export function requestedWait(error: unknown): number | undefined {
  const c = classify(error);
  return c.kind === 'rate_limited' ? c.waitMs : undefined;
}

/** Runs `operation` until it succeeds, fails with a non-retriable error, or attempts run out. */
export function withRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { maxAttempts, initialMs, maxMs, signal, onRetry } = options;
  const willRetry = (error: Error): boolean => {
    const { kind } = classify(error);
    if (kind === 'rate_limited') return (requestedWait(error) ?? 0) <= maxMs;
    // Credentials fail every request alike: surface at once, the consumer pauses with its backoff.
    return kind === 'retriable';
  };
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
      const wait = requestedWait(error);
      // p-retry adds its own backoff after this, so the total wait is at least what was asked.
      if (wait !== undefined && wait > 0) await sleep(wait, signal);
    },
  });
}
