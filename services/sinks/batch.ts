/**
 * Per-item results for batch writes, shared by sinks. Pure control flow around injected I/O, so
 * it is tested without a store.
 *
 * A batch is tried as one request. When it fails because of its data (one item the store
 * refuses), each item is retried alone, so only the bad item fails and the rest count as done.
 * When it fails because the store is unavailable, every item fails with that (retriable) error.
 */
import type { ItemResult } from './types.ts';

export interface IsolationPlan<T> {
  /** Writes the items in one request. */
  runBatch(items: T[]): Promise<void>;
  /** Writes one item alone (used only after a data error of the batch). */
  runOne(item: T): Promise<void>;
  /** Whether the error may have been caused by one item's data (and not by the store). */
  isItemError(error: unknown): boolean;
  /** The error reported for the item(s) it affected. */
  toItemError(error: unknown): unknown;
}

export async function writeIsolated<T>(items: T[], plan: IsolationPlan<T>): Promise<ItemResult[]> {
  if (items.length === 0) return [];
  try {
    await plan.runBatch(items);
    return items.map(() => ({ ok: true }));
  } catch (error) {
    if (items.length === 1 || !plan.isItemError(error)) {
      const itemError = plan.toItemError(error);
      return items.map(() => ({ ok: false, error: itemError }));
    }
  }
  const results: ItemResult[] = [];
  for (const [position, item] of items.entries()) {
    try {
      await plan.runOne(item);
      results.push({ ok: true });
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
