/**
 * A gate in front of the embedding provider that serves the live lane before the bulk lane: when
 * both wait, live goes first (and important live documents before other live work). Bulk work
 * enters in small slices (`gateSlice`), so a backfill that saturates the provider delays a live
 * document by at most one slice.
 */
export type Priority = 'live' | 'bulk';
/** Gate classes: a live lane's important documents (`vecsync.document_importance` > 0) go first. */
export type GatePriority = 'important' | Priority;

/**
 * Texts per trip through the gate: a request's worth for live work; for bulk work no more than the
 * provider computes at once, so waiting live work is delayed by one inference, not by a request
 * of 64 texts (about 0.7 s for minilm on one thread).
 */
export function gateSlice(priority: GatePriority, requestSize: number, computeBatch: number | undefined): number {
  return priority === 'bulk' ? Math.max(1, Math.min(requestSize, computeBatch ?? requestSize)) : requestSize;
}

export class PriorityGate {
  private active = 0;
  private readonly waiting: Record<GatePriority, Array<() => void>> = { important: [], live: [], bulk: [] };

  constructor(private readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new RangeError(`concurrency must be >= 1, got ${concurrency}`);
  }

  /** Runs `fn` when a slot is free, live waiters first. */
  async run<T>(priority: GatePriority, fn: () => Promise<T>): Promise<T> {
    await this.acquire(priority);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  get queued(): { live: number; bulk: number } {
    return { live: this.waiting.live.length, bulk: this.waiting.bulk.length };
  }

  private acquire(priority: GatePriority): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting[priority].push(resolve));
  }

  private release(): void {
    const next = this.waiting.important.shift() ?? this.waiting.live.shift() ?? this.waiting.bulk.shift();
    if (next) next();
    else this.active--;
  }
}
