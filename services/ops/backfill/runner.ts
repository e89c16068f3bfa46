/**
 * Runs one backfill in this process: claims it, enqueues its plan slice by slice at the planned
 * rate, renews its lease, and stops when it is done, paused (`backfill pause ID` from anywhere) or
 * interrupted. Progress goes to a callback (the CLI draws a bar) and to the backfill metrics.
 */
import os from 'node:os';
import type pg from 'pg';
import { RetriableError, describeError } from '../../domain/errors.ts';
import { metrics } from '../../adapters/telemetry/metrics.ts';
import { claimBackfill, failBackfill, getBackfill, releaseBackfill, stepBackfill, type Backfill } from './store.ts';

/** How long a runner's claim lasts without renewal; a killed runner's backfill is free after it. */
export const LEASE_MS = 15_000;
/** The largest slice (one transaction) and the pacing tick. */
const MAX_SLICE = 500;
const TICK_MS = 250;

export interface Progress {
  backfill: Backfill;
  /** Documents per second over this run. */
  rate: number;
  /** Seconds left at that rate, or undefined before there is a rate. */
  etaSeconds: number | undefined;
}

export interface RunOptions {
  onProgress?: (progress: Progress) => void;
  /** Aborting lets go of the backfill (paused) after the slice in flight. */
  signal?: AbortSignal;
  /** Wait this long for another runner's lease to end before giving up (default: one lease). */
  claimTimeoutMs?: number;
}

/** `host:pid`, so a resume on the same host can tell that a killed runner is gone. */
export function runnerId(): string {
  return `${os.hostname()}:${process.pid}`;
}

/** True when `runner` ran on this host and its process no longer exists. */
export function runnerIsDead(runner: string): boolean {
  const at = runner.lastIndexOf(':');
  if (runner.slice(0, at) !== os.hostname()) return false;
  const pid = Number(runner.slice(at + 1));
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Slice size for a rate: about four slices a second, at most MAX_SLICE documents each. */
export function sliceSize(rate: number): number {
  return Math.max(1, Math.min(MAX_SLICE, Math.ceil(rate / 4)));
}

/**
 * Runs backfill `id` until it is done, paused or aborted; returns its final row. Throws when
 * another live runner holds it.
 */
export async function runBackfill(pool: pg.Pool, id: number, options: RunOptions = {}): Promise<Backfill> {
  const runner = runnerId();
  const deadline = Date.now() + (options.claimTimeoutMs ?? LEASE_MS + 2_000);
  let claimed = await claimBackfill(pool, id, runner, LEASE_MS, runnerIsDead);
  while (!claimed && Date.now() < deadline && !options.signal?.aborted) {
    await sleep(1_000, options.signal);
    claimed = await claimBackfill(pool, id, runner, LEASE_MS, runnerIsDead);
  }
  if (!claimed) {
    const held = await getBackfill(pool, id);
    throw new RetriableError(
      `backfill ${id} is held by runner ${held?.runner ?? '?'} (lease until ${held?.leaseUntil?.toISOString()})`,
    );
  }
  if (claimed.state === 'done') return claimed;
  const labels = { backfill: String(id), model: claimed.model };
  metrics.backfillPlannedRate.set(labels, claimed.rate);
  metrics.backfillRemaining.set(labels, claimed.total - claimed.done);

  const size = sliceSize(claimed.rate);
  const startedAt = Date.now();
  const startDone = claimed.done;
  let passed = 0;
  let current = claimed;
  try {
    for (;;) {
      if (options.signal?.aborted) {
        await releaseBackfill(pool, id, runner);
        return (await getBackfill(pool, id))!;
      }
      const step = await stepBackfill(pool, id, runner, size, LEASE_MS);
      current = step.backfill;
      passed += step.advanced;
      metrics.backfillDocuments.inc(labels, step.enqueued);
      metrics.backfillRemaining.set(labels, current.total - current.done);
      const elapsed = (Date.now() - startedAt) / 1000;
      const rate = elapsed > 0 ? (current.done - startDone) / elapsed : 0;
      options.onProgress?.({
        backfill: current,
        rate,
        etaSeconds: rate > 0 ? (current.total - current.done) / rate : undefined,
      });
      if (step.released) break;
      // Pace: the next slice starts when the documents passed so far are due at the planned rate.
      const dueAt = startedAt + (passed / current.rate) * 1000;
      while (Date.now() < dueAt && !options.signal?.aborted) {
        await sleep(Math.min(TICK_MS, dueAt - Date.now()), options.signal);
      }
    }
  } catch (error) {
    await failBackfill(pool, id, runner, describeError(error)).catch(() => undefined);
    throw error;
  } finally {
    metrics.backfillPlannedRate.remove(labels);
  }
  return current;
}
