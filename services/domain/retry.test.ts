import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PoisonMessageError, RateLimitedError, RetriableError } from './errors.ts';
import { withRetry } from './retry.ts';

const fast = { maxAttempts: 4, initialMs: 1, maxMs: 50 };

function failing(errors: Error[]): { op: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    op: async () => {
      const error = errors[calls++];
      if (error) throw error;
      return 'ok';
    },
    calls: () => calls,
  };
}

describe('withRetry', () => {
  it('retries retriable errors until success, reporting each retry', async () => {
    const { op, calls } = failing([new RetriableError('down'), new RetriableError('still down')]);
    const seen: number[] = [];
    assert.equal(await withRetry(op, { ...fast, onRetry: ({ attempt }) => seen.push(attempt) }), 'ok');
    assert.equal(calls(), 3);
    assert.deepEqual(seen, [1, 2]);
  });

  it('gives up after maxAttempts with the last error', async () => {
    const { op, calls } = failing(Array.from({ length: 10 }, (_, i) => new RetriableError(`down ${i}`)));
    await assert.rejects(withRetry(op, fast), /down 3/);
    assert.equal(calls(), 4);
  });

  it('never retries a poison message or a bug', async () => {
    for (const error of [new PoisonMessageError('bad', 'x'), new TypeError('bug'), new Error('plain')]) {
      const { op, calls } = failing([error]);
      await assert.rejects(withRetry(op, fast), error);
      assert.equal(calls(), 1);
    }
  });

  it('waits at least the Retry-After a rate limit asked for', async () => {
    const { op } = failing([new RateLimitedError('429', { retryAfterMs: 40 })]);
    const started = performance.now();
    await withRetry(op, fast);
    assert.ok(performance.now() - started >= 39);
  });

  it('surfaces a Retry-After longer than maxMs instead of waiting it out', async () => {
    const { op, calls } = failing([new RateLimitedError('429', { retryAfterMs: 60_000 })]);
    await assert.rejects(
      withRetry(op, fast),
      (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 60_000,
    );
    assert.equal(calls(), 1);
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    const op = async (): Promise<never> => {
      controller.abort(new Error('shutting down'));
      throw new RetriableError('down');
    };
    await assert.rejects(withRetry(op, { ...fast, signal: controller.signal }), /shutting down/);
  });
});
