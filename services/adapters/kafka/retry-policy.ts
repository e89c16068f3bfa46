/**
 * The consumer's retry policy for a slice of messages (p-retry underneath, the same jittered
 * exponential backoff and `VECSYNC_RETRY_*` settings as domain/retry.ts, which retries requests).
 * What to do is `classify(error)` (domain/errors.ts), nothing else:
 *
 * - retriable / rate_limited (a dependency is down or rate limiting): retried until they succeed
 *   or the caller aborts; an outage must not flood the dead-letter topic. The delay grows to
 *   `maxMs`, a requested wait is honoured.
 * - credentials (401/403): the same, and the service reports itself paused (`onPause`) until an
 *   attempt succeeds again (`onResume`): a rotated key must not dead-letter the backlog.
 * - unknown: `maxAttempts` tries, then surface (the runner dead-letters them).
 * - poison and bug (TypeError, RangeError, ...): never retried.
 */
import pRetry, { AbortError } from 'p-retry';
import { classify, type ErrorClass } from '../../domain/errors.ts';
import { sleep, type RetryPolicy } from '../../domain/retry.ts';

export interface RetryHooks {
  signal?: AbortSignal;
  /** Called after each failed attempt, before the wait (log it, heartbeat, count it). */
  onFailedAttempt?: (error: unknown, attempt: number) => void | Promise<void>;
  /** Called on each credentials failure (the service is paused while they last). */
  onPause?: (error: ErrorClass & { kind: 'credentials' }, cause: unknown) => void;
  /** Called once when an attempt succeeds after `onPause`. */
  onResume?: () => void;
}

/** Decides whether attempt number `attempt` (1-based) that failed with `error` gets another try. */
export function shouldRetry(error: unknown, attempt: number, policy: RetryPolicy): boolean {
  switch (classify(error).kind) {
    case 'retriable':
    case 'rate_limited':
    case 'credentials':
      return true;
    case 'unknown':
      return attempt < policy.maxAttempts;
    case 'poison':
    case 'bug':
      return false;
  }
}

export async function withMessageRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  let paused = false;
  return pRetry(
    async (attempt) => {
      try {
        const result = await fn(attempt);
        if (paused) hooks.onResume?.();
        return result;
      } catch (error) {
        // p-retry refuses to retry TypeErrors on its own; make the decision ours alone.
        if (!shouldRetry(error, attempt, policy)) throw new AbortError(error instanceof Error ? error : String(error));
        const c = classify(error);
        if (c.kind === 'credentials') {
          paused = true;
          hooks.onPause?.(c, error);
        }
        if (c.kind === 'rate_limited' && c.waitMs) await sleep(c.waitMs, hooks.signal);
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
