import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Errors } from '@pinecone-database/pinecone';
import {
  classify,
  ConfigError,
  CredentialsError,
  isRetriable,
  PoisonMessageError,
  RateLimitedError,
  RetriableError,
} from '../../../domain/errors.ts';
import {
  classifyPineconeError,
  classifyStatus,
  errorMessage,
  parseRetryAfter,
  PineconeHttpError,
  PineconeTransportError,
  pineconeFetch,
  toSinkError,
} from './errors.ts';

const http = (status: number, retryAfterMs?: number) =>
  new PineconeHttpError(status, 'msg', retryAfterMs, 'http://h/vectors/upsert');

describe('pinecone errors', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter('0.5'), 500);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now), 3000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon'), undefined);
  });

  it("reads Pinecone's error bodies", () => {
    assert.equal(
      errorMessage('{"code":3,"message":"Vector dimension 3 does not match","details":[]}'),
      'Vector dimension 3 does not match',
    );
    assert.equal(
      errorMessage('{"error":{"code":"NOT_FOUND","message":"Resource x not found"},"status":404}'),
      'Resource x not found',
    );
    assert.equal(errorMessage('"Unauthorized"'), 'Unauthorized');
    assert.equal(errorMessage('upstream connect error'), 'upstream connect error');
    assert.equal(errorMessage(''), '(no body)');
  });

  it('classifies statuses', () => {
    const table: [number, string][] = [
      [429, 'rate_limited'],
      [408, 'unavailable'],
      [500, 'unavailable'],
      [503, 'unavailable'],
      [401, 'unauthorized'],
      [403, 'forbidden'],
      [404, 'not_found'],
      [400, 'data'],
      [413, 'data'],
      [422, 'data'],
    ];
    for (const [status, kind] of table) assert.equal(classifyStatus(status), kind, String(status));
  });

  it('maps each kind to the pipeline error hierarchy, through any cause chain', () => {
    const limited = toSinkError(http(429, 1500), 'write');
    assert.ok(limited instanceof RateLimitedError && limited.retryAfterMs === 1500);
    const noWait = toSinkError(http(429), 'write');
    assert.ok(noWait instanceof RateLimitedError && noWait.retryAfterMs === undefined);
    assert.ok(toSinkError(http(503), 'write') instanceof RetriableError);
    assert.ok(
      toSinkError(new PineconeTransportError('refused', new Error('ECONNREFUSED')), 'w') instanceof RetriableError,
    );
    assert.ok(toSinkError(http(404), 'w') instanceof ConfigError);
    // A refused key is no item's fault: the consumer pauses, it never dead-letters.
    for (const [status, reason] of [
      [401, 'unauthorized'],
      [403, 'forbidden'],
    ] as const) {
      const refused = toSinkError(http(status), 'write');
      assert.ok(refused instanceof CredentialsError, String(status));
      assert.equal(refused.dependency, 'pinecone');
      assert.equal(refused.reason, reason);
      assert.match(refused.message, /check PINECONE_API_KEY/);
      assert.deepEqual(classify(refused), { kind: 'credentials', reason, dependency: 'pinecone' });
      assert.ok(isRetriable(refused));
    }
    // The SDK's own 401 (control plane) too.
    const sdk401 = toSinkError(
      new Errors.PineconeAuthorizationError({ status: 401, url: 'https://api.pinecone.io/indexes/x' }),
      'describe index',
    );
    assert.ok(sdk401 instanceof CredentialsError && sdk401.reason === 'unauthorized');
    const poison = toSinkError(http(400), 'write');
    assert.ok(poison instanceof PoisonMessageError && poison.reason === 'sink_rejected');
    assert.ok(!isRetriable(poison));
    // The SDK may wrap ours (e.g. in a PineconeConnectionError): the cause decides.
    const wrapped = new Errors.PineconeConnectionError(http(429, 10));
    assert.ok(toSinkError(wrapped, 'w') instanceof RateLimitedError);
    // The SDK's own errors (control plane, host resolution).
    assert.equal(classifyPineconeError(new Errors.PineconeMaxRetriesExceededError(3)), 'unavailable');
    assert.equal(classifyPineconeError(new Errors.PineconeConnectionError(new Error('x'))), 'unavailable');
    // Anything else is a bug: returned as it is, never retried.
    const bug = new TypeError('x is undefined');
    assert.equal(toSinkError(bug, 'w'), bug);
  });

  it('the fetch given to the SDK turns answers and failures into typed errors', async () => {
    const answer =
      (status: number, body: string, headers: Record<string, string> = {}): typeof fetch =>
      async () =>
        new Response(body, { status, headers });
    const ok = await pineconeFetch(1000, answer(200, '{}'))('http://h/query', {});
    assert.equal(ok.status, 200);
    await assert.rejects(
      pineconeFetch(1000, answer(429, '{"code":8,"message":"slow down"}', { 'retry-after': '2' }))(
        'http://h/vectors/upsert?x=1',
        {},
      ),
      (e: unknown) =>
        e instanceof PineconeHttpError &&
        e.httpStatus === 429 &&
        e.retryAfterMs === 2000 &&
        /slow down/.test(e.message) &&
        e.url === 'http://h/vectors/upsert' &&
        e instanceof Errors.BasePineconeError,
    );
    const refused: typeof fetch = async () => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      });
    };
    await assert.rejects(
      pineconeFetch(1000, refused)('http://h/query', {}),
      (e: unknown) => e instanceof PineconeTransportError && /ECONNREFUSED/.test(e.message),
    );
    // A server that never answers; the pending socket of a real request keeps the process alive.
    const hang: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        const socket = setTimeout(() => undefined, 5000);
        init?.signal?.addEventListener('abort', () => {
          clearTimeout(socket);
          reject(init.signal?.reason);
        });
      });
    await assert.rejects(
      pineconeFetch(50, hang)('http://h/query', {}),
      (e: unknown) => e instanceof PineconeTransportError && /no answer within 50 ms/.test(e.message),
    );
  });
});
