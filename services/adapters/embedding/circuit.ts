/**
 * A circuit breaker (opossum) in front of an embedding provider. When the provider keeps failing
 * retriably, calls fail fast with a RetriableError that says when the next probe is due, instead of
 * piling timeouts on a provider that is down; one probe per reset period tests whether it is back.
 * Poison and configuration errors say nothing about the provider's health and do not count.
 */
import CircuitBreaker from 'opossum';
import { isRetriable, RetriableError } from '../../domain/errors.ts';
import type { Embedder } from './embedder.ts';

export interface BreakerSettings {
  /** How long the circuit stays open before one probe is let through. */
  resetTimeoutMs: number;
  /** Calls in the rolling window before the breaker may open. */
  volumeThreshold: number;
  /** Failure percentage (of retriable failures) that opens it. */
  errorThresholdPercentage: number;
}

export const DEFAULT_BREAKER: BreakerSettings = {
  resetTimeoutMs: 10_000,
  volumeThreshold: 3,
  errorThresholdPercentage: 50,
};

export interface GuardedEmbedder extends Embedder {
  readonly circuit: 'closed' | 'open' | 'half-open';
}

export function withCircuitBreaker(embedder: Embedder, settings: BreakerSettings = DEFAULT_BREAKER): GuardedEmbedder {
  let openedAt = 0;
  const breaker = new CircuitBreaker((texts: string[], signal?: AbortSignal) => embedder.embed(texts, signal), {
    timeout: false, // the provider has its own request timeout
    resetTimeout: settings.resetTimeoutMs,
    volumeThreshold: settings.volumeThreshold,
    errorThresholdPercentage: settings.errorThresholdPercentage,
    // true = "not a failure of the provider": bad input and misconfiguration do not open the circuit.
    errorFilter: (error: unknown) => !isRetriable(error),
  });
  breaker.on('open', () => {
    openedAt = Date.now();
  });
  return {
    name: embedder.name,
    dimensions: embedder.dimensions,
    ...(embedder.computeBatch !== undefined ? { computeBatch: embedder.computeBatch } : {}),
    get circuit() {
      return breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed';
    },
    async embed(texts, signal) {
      try {
        return await breaker.fire(texts, signal);
      } catch (error) {
        if ((error as { code?: string }).code === 'EOPENBREAKER') {
          const wait = Math.max(0, openedAt + settings.resetTimeoutMs - Date.now());
          throw new RetriableError(
            `embedding provider ${embedder.name}: circuit open after repeated failures; next probe in ${wait} ms`,
            {
              cause: error,
              retryAfterMs: wait,
            },
          );
        }
        throw error;
      }
    },
    healthCheck: () => embedder.healthCheck(),
  };
}
