/**
 * Embeddings from any OpenAI-compatible endpoint (OpenAI, Azure-style proxies, Ollama, vLLM, TEI):
 * `POST {baseUrl}/embeddings` with `{model, input: string[]}` answering `{data: [{index, embedding}]}`.
 *
 * Failures are classified once, here, into the error hierarchy:
 * - 429 → RateLimitedError (with the server's Retry-After), 408/5xx/network/timeout → RetriableError;
 *   both are retried with jittered backoff, then surface to the consumer's retry loop.
 * - 401/403 → CredentialsError: a rotated or wrong key fails every text alike and no document is
 *   at fault; the consumer pauses (retries with backoff, dead-letters nothing) until it works.
 * - 404 → ConfigError: a wrong URL or model.
 * - other 4xx → PoisonMessageError(`embedding_rejected`): these texts were refused.
 * - a vector of the wrong length → PoisonMessageError(`wrong_dimension`); `healthCheck` turns the
 *   same mismatch into a ConfigError at start-up.
 * The API key is only ever placed in the Authorization header; it is never logged or put in errors.
 */
import { z } from 'zod';
import {
  ConfigError,
  CredentialsError,
  PoisonMessageError,
  RateLimitedError,
  RetriableError,
  describeError,
} from '../../../domain/errors.ts';
import { withRetry } from '../../../domain/retry.ts';
import type { Embedder, EmbedderSettings } from '../embedder.ts';

export type OpenAISettings = Pick<
  EmbedderSettings,
  'dimensions' | 'batchSize' | 'timeoutMs' | 'openai' | 'retry' | 'log'
>;

const responseSchema = z.object({
  data: z.array(z.object({ index: z.int().nonnegative(), embedding: z.array(z.number()) })),
});

export function createOpenAI(settings: OpenAISettings): Embedder {
  const { dimensions, batchSize, timeoutMs, retry, log } = settings;
  const { baseUrl, apiKey, model } = settings.openai;
  const url = `${baseUrl.replace(/\/+$/, '')}/embeddings`;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (apiKey !== '') headers.authorization = `Bearer ${apiKey}`;

  const request = async (input: string[], signal: AbortSignal | undefined): Promise<Float32Array[]> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model, input }),
        signal: combined,
      });
      if (!response.ok) throw await statusError(response, model);
      return toVectors(await readJson(response), input.length, dimensions, model);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new RetriableError(`embedding request timed out after ${timeoutMs} ms`, { cause: error });
      if (error instanceof Error && error.name === 'TypeError') {
        // fetch reports connection failures as TypeError('fetch failed', { cause }).
        throw new RetriableError(`embedding endpoint unreachable: ${describeError(error.cause ?? error)}`, {
          cause: error,
        });
      }
      throw error;
    }
  };

  const embedBatch = (input: string[], signal: AbortSignal | undefined): Promise<Float32Array[]> =>
    withRetry(() => request(input, signal), {
      ...retry,
      signal,
      onRetry: ({ error, attempt, retriesLeft }) =>
        log?.warn({ attempt, retriesLeft, error: describeError(error), model }, 'embedding request failed; retrying'),
    });

  return {
    name: 'openai',
    dimensions,
    async embed(texts, signal) {
      const vectors: Float32Array[] = [];
      for (let start = 0; start < texts.length; start += batchSize) {
        vectors.push(...(await embedBatch(texts.slice(start, start + batchSize), signal)));
      }
      return vectors;
    },
    async healthCheck() {
      try {
        await embedBatch(['vecsync health check'], undefined);
      } catch (error) {
        if (error instanceof PoisonMessageError && error.reason === 'wrong_dimension') {
          throw new ConfigError(`VECSYNC_EMBEDDING_DIMENSIONS does not match the model: ${error.message}`, {
            cause: error,
          });
        }
        throw error;
      }
    },
  };
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RetriableError(`embedding endpoint answered ${response.status} with non-JSON: ${snippet(text)}`, {
      cause: error,
    });
  }
}

/** The error for a non-2xx response. */
async function statusError(response: Response, model: string): Promise<Error> {
  const detail = `${response.status} from embedding endpoint (model ${model}): ${await errorDetail(response)}`;
  const status = response.status;
  if (status === 429) return new RateLimitedError(detail, { retryAfterMs: retryAfterMs(response.headers) });
  if (status === 408 || status >= 500) return new RetriableError(detail);
  if (status === 401) return new CredentialsError('openai', 'unauthorized', detail);
  if (status === 403) return new CredentialsError('openai', 'forbidden', detail);
  if (status === 404) return new ConfigError(detail);
  return new PoisonMessageError('embedding_rejected', detail);
}

/** The server's error message (OpenAI style `{error: {message}}`) or the start of the body. */
async function errorDetail(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const parsed: unknown = JSON.parse(text);
    const message = (parsed as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return snippet(message);
  } catch {
    // not JSON: fall through to the raw text
  }
  return snippet(text) || response.statusText;
}

function snippet(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** `retry-after-ms` (some proxies) or `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.has('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Validates the response and returns the vectors in input order. */
function toVectors(body: unknown, expected: number, dimensions: number, model: string): Float32Array[] {
  const parsed = responseSchema.safeParse(body);
  if (!parsed.success) {
    throw new RetriableError(
      `embedding endpoint answered an unexpected shape: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  }
  const vectors = new Array<Float32Array | undefined>(expected);
  for (const { index, embedding } of parsed.data.data) {
    if (index >= expected || vectors[index] !== undefined) {
      throw new RetriableError(`embedding endpoint answered index ${index} for ${expected} inputs`);
    }
    if (embedding.length !== dimensions) {
      throw new PoisonMessageError(
        'wrong_dimension',
        `model ${model} returned ${embedding.length} dimensions, expected ${dimensions}`,
      );
    }
    vectors[index] = Float32Array.from(embedding);
  }
  const missing = vectors.findIndex((v) => v === undefined);
  if (missing >= 0)
    throw new RetriableError(`embedding endpoint answered no vector for input ${missing} of ${expected}`);
  return vectors as Float32Array[];
}
