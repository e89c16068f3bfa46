/**
 * Per-item results for batch writes, shared by sinks. Pure control flow around injected I/O, so
 * it is tested without a store.
 *
 * A batch is tried as one request. When it fails because of its data (one item the store
 * refuses), each item is retried alone, so only the bad item fails and the rest count as done.
 * When it fails because the store is unavailable, every item fails with that (retriable) error.
 */
import { isRetriable } from '../../domain/errors.ts';
import type { ItemResult } from './types.ts';

/**
 * What one request did per item, when it can tell (a fenced sink reports the items its fence
 * turned into no-ops); nothing means every item succeeded.
 */
export type BatchOutcome = ItemResult[] | void;

export interface IsolationPlan<T> {
  /** Writes the items in one request. */
  runBatch(items: T[]): Promise<BatchOutcome>;
  /** Writes one item alone (used only after a data error of the batch). */
  runOne(item: T): Promise<BatchOutcome>;
  /** Whether the error may have been caused by one item's data (and not by the store). */
  isItemError(error: unknown): boolean;
  /** The error reported for the item(s) it affected. */
  toItemError(error: unknown): unknown;
}

export async function writeIsolated<T>(items: T[], plan: IsolationPlan<T>): Promise<ItemResult[]> {
  if (items.length === 0) return [];
  try {
    const outcome = await plan.runBatch(items);
    return outcome ?? items.map(() => ({ ok: true }));
  } catch (error) {
    if (items.length === 1 || !plan.isItemError(error)) {
      const itemError = plan.toItemError(error);
      return items.map(() => ({ ok: false, error: itemError }));
    }
  }
  const results: ItemResult[] = [];
  for (const [position, item] of items.entries()) {
    try {
      const outcome = await plan.runOne(item);
      results.push(outcome?.[0] ?? { ok: true });
    } catch (error) {
      const itemError = plan.toItemError(error);
      results.push({ ok: false, error: itemError });
      if (!plan.isItemError(error)) {
        // The store went away mid-way: the rest would fail the same way, without a round trip each.
        for (let rest = position + 1; rest < items.length; rest++) results.push({ ok: false, error: itemError });
        break;
      }
    }
  }
  return results;
}

/**
 * Splits positions into waves in which every key appears at most once, keeping each key's
 * occurrences in order: the same document twice in one batch is applied twice, in order, as
 * blind writes would be (one statement or request cannot write the same record twice).
 */
export function planWaves(keys: readonly string[]): number[][] {
  const waves: number[][] = [];
  const seen = new Map<string, number>();
  keys.forEach((key, position) => {
    const wave = seen.get(key) ?? 0;
    seen.set(key, wave + 1);
    (waves[wave] ??= []).push(position);
  });
  return waves;
}

/**
 * Applies `run` to the valid positions wave by wave (a document at most once per wave). Once a
 * wave fails with an error that `stopsLaterWaves` accepts (by default: retriable), later waves
 * (later writes of the same documents) are not applied and report that error, so a retry can
 * never put an older write on top of a newer one.
 */
export async function applyInWaves(
  valid: number[],
  keyOf: (position: number) => string,
  results: ItemResult[],
  run: (positions: number[]) => Promise<ItemResult[]>,
  stopsLaterWaves: (error: unknown) => boolean = isRetriable,
): Promise<void> {
  let stop: unknown;
  for (const wave of planWaves(valid.map(keyOf))) {
    const positions = wave.map((k) => valid[k] as number);
    if (stop !== undefined) {
      for (const i of positions) results[i] = { ok: false, error: stop };
      continue;
    }
    const outcome = await run(positions);
    outcome.forEach((result, k) => (results[positions[k] as number] = result));
    const failed = outcome.find((r) => !r.ok && stopsLaterWaves(r.error));
    if (failed && !failed.ok) stop = failed.error;
  }
}
