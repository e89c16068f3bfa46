/** Polling with a deadline: every readiness wait in the stack goes through `waitFor`, never a fixed sleep. */
import { StackError } from './errors.ts';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before each poll; throwing here aborts the wait at once (e.g. the process died). */
  abortIf?: () => Promise<void> | void;
}

/**
 * Polls `check` until it returns true. An exception from `check` counts as "not yet"; the last
 * one is named in the timeout error.
 */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, o: WaitOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const interval = o.intervalMs ?? 500;
  let lastError: unknown;
  for (;;) {
    await o.abortIf?.();
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message.split('\n')[0]}` : '';
      throw new StackError(`timed out after ${Math.round(o.timeoutMs / 1000)}s waiting for ${what}${why}`);
    }
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
}
