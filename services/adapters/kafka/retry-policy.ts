/**
 * The consumer's retry policy for a slice of messages (p-retry underneath, the same jittered
 * exponential backoff and `VECSYNC_RETRY_*` settings as core/retry.ts, which retries requests).
 *
 * - Retriable errors (a dependency is down or rate limiting) are retried until they succeed or the
 *   caller aborts: an outage must not flood the dead-letter topic. The delay grows to `maxMs`.
 * - Unclassified errors get `maxAttempts` tries, then surface (the runner dead-letters them).
 * - Poison messages and programming errors (TypeError, RangeError...) are never retried.
 */
import pRetry, { AbortError } from 'p-retry';
import { isPoison, isRetriable, RetriableError } from '../../domain/errors.ts';
import type { RetryPolicy } from '../../domain/retry.ts';

export interface RetryHooks {
  signal?: AbortSignal;
  /** Called after each failed attempt, before the wait (log it, heartbeat, count it). */
  onFailedAttempt?: (error: unknown, attempt: number) => void | Promise<void>;
}

const PROGRAMMING_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError];

export function isProgrammingError(error: unknown): boolean {
  return PROGRAMMING_ERRORS.some((kind) => error instanceof kind);
}

/** Decides whether attempt number `attempt` (1-based) that failed with `error` gets another try. */
export function shouldRetry(error: unknown, attempt: number, policy: RetryPolicy): boolean {
  if (isRetriable(error)) return true;
  if (isPoison(error) || isProgrammingError(error)) return false;
  return attempt < policy.maxAttempts;
}

export async function withMessageRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  return pRetry(
    async (attempt) => {
      try {
        return await fn(attempt);
      } catch (error) {
        // p-retry refuses to retry TypeErrors on its own; make the decision ours alone.
        if (!shouldRetry(error, attempt, policy)) throw new AbortError(error instanceof Error ? error : String(error));
        if (error instanceof RetriableError && error.retryAfterMs) await sleep(error.retryAfterMs, hooks.signal);
        throw error instanceof Error ? error : new Error(String(error));
      }
    },
    {
      retries: Number.POSITIVE_INFINITY,
      factor: 2,
      minTimeout: policy.initialMs,
      maxTimeout: policy.maxMs,
      randomize: true,
      signal: hooks.signal,
      onFailedAttempt: async ({ error, attemptNumber }) => {
        await hooks.onFailedAttempt?.(unwrapAbort(error), attemptNumber);
      },
    },
  ).catch((error: unknown) => {
    throw unwrapAbort(error);
  });
}

/** p-retry wraps the original error of an aborted retry; callers want the original. */
function unwrapAbort(error: unknown): unknown {
  if (error instanceof AbortError && error.originalError) return error.originalError;
  return error;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
