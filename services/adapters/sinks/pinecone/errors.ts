/**
 * What a Pinecone failure means for the pipeline, decided in one place.
 *
 * The SDK's own error mapping loses what the pipeline needs: a 429 becomes an "unmapped" error
 * without its Retry-After, a 403 becomes a BadRequest, a timeout and a refused connection look
 * alike. So the sink gives the SDK a `fetchApi` (`pineconeFetch`, a public SDK option) that turns
 * every non-2xx answer into a `PineconeHttpError` carrying the status, Pinecone's message and
 * Retry-After, and every transport failure into a `PineconeTransportError`. Both extend the SDK's
 * `BasePineconeError`, which its error middleware passes through unchanged.
 *
 * | answer | kind | reported as |
 * |---|---|---|
 * | 429 | rate_limited | RateLimitedError (retryAfterMs from Retry-After) |
 * | 408, 5xx, timeout, connection refused/reset, DNS | unavailable | RetriableError |
 * | 401 | unauthorized | CredentialsError `pinecone` `unauthorized` (the API key is wrong or rotated: the service pauses) |
 * | 403 | forbidden | CredentialsError `pinecone` `forbidden` (the key lacks access to the index: the service pauses) |
 * | 404 | not_found | ConfigError (no such index at this host) |
 * | 400, 413, 422, other 4xx | data | PoisonMessageError `sink_rejected` (the item is at fault) |
 * | anything else | bug | the error itself (never retried) |
 */
import { Errors } from '@pinecone-database/pinecone';
import {
  ConfigError,
  CredentialsError,
  PoisonMessageError,
  RateLimitedError,
  RetriableError,
} from '../../../domain/errors.ts';

export type PineconeErrorKind =
  'rate_limited' | 'unavailable' | 'unauthorized' | 'forbidden' | 'not_found' | 'data' | 'bug';

/** A non-2xx answer of Pinecone. `httpStatus`, not `status`: the SDK's retry wrapper keys on `status`. */
export class PineconeHttpError extends Errors.BasePineconeError {
  constructor(
    readonly httpStatus: number,
    message: string,
    readonly retryAfterMs: number | undefined,
    readonly url: string,
  ) {
    super(`Pinecone answered ${httpStatus} to ${url}: ${message}`);
    this.name = 'PineconeHttpError';
  }
}

/** No answer: timeout, connection refused or reset, DNS failure. */
export class PineconeTransportError extends Errors.BasePineconeError {
  constructor(message: string, cause: unknown) {
    super(message, cause instanceof Error ? cause : new Error(String(cause)));
    this.name = 'PineconeTransportError';
  }
}

/** Retry-After: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Pinecone's error bodies are `{"code":3,"message":"...","details":[]}`, sometimes plain text. */
export function errorMessage(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) {
      const p = parsed as { message?: unknown; error?: { message?: unknown } };
      if (typeof p.message === 'string') return p.message;
      if (typeof p.error?.message === 'string') return p.error.message;
    }
    if (typeof parsed === 'string') return parsed;
  } catch {
    // plain text
  }
  return body.slice(0, 500) || '(no body)';
}

function urlOf(input: Parameters<typeof fetch>[0]): string {
  const raw = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  // Without the query string: fetch URLs carry ids.
  return raw.split('?')[0] ?? raw;
}

/**
 * The `fetchApi` given to the SDK: a time limit per request, and typed errors for every failure
 * (see the module comment). `base` is injectable for tests.
 */
export function pineconeFetch(timeoutMs: number, base: typeof fetch = globalThis.fetch): typeof fetch {
  return async (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const url = urlOf(input);
    let response: Response;
    try {
      response = await base(input, { ...init, signal });
    } catch (error) {
      const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : describeCause(error);
      throw new PineconeTransportError(`Pinecone request to ${url} failed: ${why}`, error);
    }
    if (response.ok) return response;
    let body = '';
    try {
      body = await response.text();
    } catch {
      // the status is what matters
    }
    throw new PineconeHttpError(
      response.status,
      errorMessage(body),
      parseRetryAfter(response.headers.get('retry-after')),
      url,
    );
  };
}

function describeCause(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      parts.push(typeof code === 'string' ? `${current.message} (${code})` : current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(': ');
}

/** The first error in the `cause` chain that satisfies `test`. */
function findCause<T>(error: unknown, test: (e: unknown) => e is T): T | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth++) {
    if (test(current)) return current;
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

const isHttp = (e: unknown): e is PineconeHttpError => e instanceof PineconeHttpError;
const isTransport = (e: unknown): e is PineconeTransportError => e instanceof PineconeTransportError;

export function classifyStatus(status: number): PineconeErrorKind {
  if (status === 429) return 'rate_limited';
  if (status === 408 || status >= 500) return 'unavailable';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status >= 400) return 'data';
  return 'bug';
}

const SDK_UNAVAILABLE = new Set([
  'PineconeConnectionError',
  'PineconeUnavailableError',
  'PineconeInternalServerError',
  'PineconeMaxRetriesExceededError',
]);

export function classifyPineconeError(error: unknown): PineconeErrorKind {
  const http = findCause(error, isHttp);
  if (http) return classifyStatus(http.httpStatus);
  if (findCause(error, isTransport)) return 'unavailable';
  // Errors the SDK raised itself (e.g. while resolving an index host through the control plane).
  const name = error instanceof Error ? error.name : '';
  if (SDK_UNAVAILABLE.has(name)) return 'unavailable';
  // The SDK raises this for a 401 (a 403 reaches us as a PineconeHttpError through pineconeFetch).
  if (name === 'PineconeAuthorizationError') return 'unauthorized';
  if (name === 'PineconeNotFoundError') return 'not_found';
  if (name === 'PineconeBadRequestError' || name === 'PineconeUnprocessableEntityError') return 'data';
  return 'bug';
}

/**
 * The error to report for an item or a call: RateLimitedError / RetriableError when Pinecone is
 * unavailable, CredentialsError when it refuses the API key (every request would fail alike and no
 * item is at fault: the service pauses, nothing is dead-lettered), ConfigError when the index is
 * not at this host, PoisonMessageError(`sink_rejected`) for data Pinecone refuses, the error itself
 * for bugs. Messages name PINECONE_API_KEY, never its value.
 */
export function toSinkError(error: unknown, what: string): unknown {
  const http = findCause(error, isHttp);
  const message = http ? http.message : error instanceof Error ? error.message : String(error);
  const kind = classifyPineconeError(error);
  switch (kind) {
    case 'rate_limited':
      return new RateLimitedError(`Pinecone rate limited ${what}: ${message}`, {
        cause: error,
        ...(http?.retryAfterMs !== undefined ? { retryAfterMs: http.retryAfterMs } : {}),
      });
    case 'unavailable':
      return new RetriableError(`Pinecone unavailable (${what}): ${message}`, { cause: error });
    case 'unauthorized':
    case 'forbidden':
      return new CredentialsError(
        'pinecone',
        kind,
        `Pinecone refused the API key (${what}): ${message}; check PINECONE_API_KEY and the index host`,
        { cause: error },
      );
    case 'not_found':
      return new ConfigError(`Pinecone index not found (${what}): ${message}; check VECSYNC_PINECONE_HOST/INDEX`, {
        cause: error,
      });
    case 'data':
      return new PoisonMessageError('sink_rejected', `Pinecone rejected ${what}: ${message}`, { cause: error });
    case 'bug':
      return error;
  }
}
