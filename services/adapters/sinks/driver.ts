/**
 * The per-item driver every sink write goes through: resolve the target, check each item, apply
 * the valid ones (in waves where the same document may appear twice), isolate the item the store
 * refuses, and report per item. Pure control flow around the sink's I/O, tested without a store;
 * a sink supplies only the request and what its errors mean.
 */
import { isRetriable, type PoisonMessageError } from '../../domain/errors.ts';
import { applyInWaves, writeIsolated, type BatchOutcome } from './batch.ts';
import type { ItemResult } from './types.ts';

export interface ItemDriver<T> {
  /** Why an item can never succeed (see `validate.ts`), or null. */
  check(item: T): PoisonMessageError | null;
  /** Writes the items in one request or transaction. */
  write(items: T[]): Promise<BatchOutcome>;
  /** Whether a failed request may have been caused by one item's data (then each item is tried alone). */
  isItemError(error: unknown): boolean;
  /** The error reported for the item(s) a failure affected (default: the error itself). */
  toItemError?(error: unknown): unknown;
  /**
   * The item's document (see `documentKey`). Given: the same document twice in one call is
   * applied in order, wave by wave. Omit it for idempotent operations (deletes).
   */
  keyOf?(item: T): string;
  /** Which failure keeps later waves from being applied (default: retriable ones). */
  stopsLaterWaves?(error: unknown): boolean;
  /** Sees each wave's items and their results once applied (a sink may remember what it wrote). */
  afterWave?(items: T[], results: ItemResult[]): void;
  /** An item error that every item would hit (a rejected key): thrown, not reported per item. */
  throwsOn?(error: unknown): boolean;
}

/**
 * Runs `items` through the driver that `prepare` gives. `prepare` resolves what the write needs
 * (a table, an index handle); when it fails retriably, every item fails with that error (the
 * batch is retried later), any other failure is thrown (a bug or a configuration error).
 */
export async function driveItems<T>(items: T[], prepare: () => Promise<ItemDriver<T>>): Promise<ItemResult[]> {
  let driver: ItemDriver<T>;
  try {
    driver = await prepare();
  } catch (error) {
    if (isRetriable(error)) return items.map(() => ({ ok: false, error }));
    throw error;
  }
  const results = new Array<ItemResult>(items.length);
  const valid: number[] = [];
  items.forEach((item, i) => {
    const bad = driver.check(item);
    if (bad) results[i] = { ok: false, error: bad };
    else valid.push(i);
  });
  const toItemError = driver.toItemError ?? ((error: unknown) => error);
  const apply = async (positions: number[]): Promise<ItemResult[]> => {
    const wave = positions.map((i) => items[i] as T);
    const outcome = await writeIsolated(wave, {
      runBatch: (batch) => driver.write(batch),
      runOne: (item) => driver.write([item]),
      isItemError: (error) => driver.isItemError(error),
      toItemError,
    });
    driver.afterWave?.(wave, outcome);
    return outcome;
  };
  const { keyOf } = driver;
  if (keyOf) {
    await applyInWaves(valid, (i) => keyOf(items[i] as T), results, apply, driver.stopsLaterWaves);
  } else {
    const outcome = await apply(valid);
    outcome.forEach((result, k) => (results[valid[k] as number] = result));
  }
  if (driver.throwsOn) {
    for (const r of results) if (!r.ok && driver.throwsOn(r.error)) throw r.error;
  }
  return results;
}
