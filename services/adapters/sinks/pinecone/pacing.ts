/**
 * Bounded parallelism and request pacing. Pinecone limits requests per second per namespace and
 * counts updates per record; a sink that fires everything at once only collects 429s.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and returns every outcome in input
 * order (like Promise.allSettled). Once `stop(error)` says so after a failure, items not started
 * yet are not started and report that error: an outage need not cost one round trip per item.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  stop: (error: unknown) => boolean = () => false,
): Promise<PromiseSettledResult<R>[]> {
  const results = new Array<PromiseSettledResult<R>>(items.length);
  let next = 0;
  let stopped: { error: unknown } | undefined;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      if (stopped) {
        results[i] = { status: 'rejected', reason: stopped.error };
        continue;
      }
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i] as T, i) };
      } catch (error) {
        results[i] = { status: 'rejected', reason: error };
        if (!stopped && stop(error)) stopped = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}

/** Throws the first rejection of `mapBounded` results, else returns the values. */
export function valuesOrThrow<R>(results: readonly PromiseSettledResult<R>[]): R[] {
  return results.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}

/**
 * Spaces calls per key (a namespace) at `perSecond`: each `acquire` reserves the next free slot
 * and waits for it. In-process only; several writer processes each pace themselves, and a 429
 * beyond that is retried like any other.
 */
export class Pacer {
  readonly #intervalMs: number;
  readonly #next = new Map<string, number>();

  constructor(perSecond: number) {
    this.#intervalMs = 1000 / perSecond;
  }

  async acquire(key: string): Promise<void> {
    const now = performance.now();
    const slot = Math.max(now, this.#next.get(key) ?? now);
    this.#next.set(key, slot + this.#intervalMs);
    if (this.#next.size > 10_000) this.#forgetPast(now);
    const wait = slot - now;
    if (wait >= 1) await sleep(wait);
  }

  #forgetPast(now: number): void {
    for (const [key, at] of this.#next) if (at < now) this.#next.delete(key);
  }
}
