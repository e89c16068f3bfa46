/**
 * The embedder interface. A provider is one folder exporting one factory; the registry in
 * `index.ts` maps the config `type` word (`VECSYNC_EMBEDDER`) to it.
 */
import type { Logger } from '../telemetry/log.ts';
import type { RetryPolicy } from '../../domain/retry.ts';
import type { MinilmSettings } from './minilm/index.ts';

export interface Embedder {
  /** Provider name, the registry key (`hashing`, `minilm`, `openai`). */
  readonly name: string;
  /** Length of every vector `embed` returns. */
  readonly dimensions: number;
  /**
   * How many texts the provider computes at once, when that is fewer than a request holds (an
   * in-process model runs a few texts per inference). The embedder hands bulk work over in calls
   * of this size, so a live document waiting behind a backfill waits for one inference, not for a
   * whole request of texts. Providers that answer a request at once leave it out.
   */
  readonly computeBatch?: number;
  /**
   * One vector per text, in input order. Throws RetriableError/RateLimitedError when the
   * provider is unavailable, PoisonMessageError when it refuses these texts, ConfigError when
   * it is misconfigured. Aborting `signal` stops at once with its reason.
   */
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]>;
  /** Resolves when the provider answers with vectors of `dimensions`; throws otherwise. */
  healthCheck(): Promise<void>;
  /**
   * Prepares what the first `embed` would otherwise wait for (a local model's files and session),
   * so a service can do it before it consumes. Providers without such a step leave it out.
   */
  warmUp?(): Promise<void>;
}

/**
 * Everything a provider may need; `{ ...config.embedder, retry: config.retry }` is one. Each
 * provider reads only its part.
 */
export interface EmbedderSettings {
  type: string;
  dimensions: number;
  /** Texts per request. */
  batchSize: number;
  /** Timeout of one request. */
  timeoutMs: number;
  openai: { baseUrl: string; apiKey: string; model: string };
  /** The minilm provider's part (absent in settings made for other providers). */
  minilm?: MinilmSettings;
  retry: RetryPolicy;
  log?: Logger | undefined;
}
