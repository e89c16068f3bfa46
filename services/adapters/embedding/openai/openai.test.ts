import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { fakeEmbedding, startOpenAIServer, type OpenAIServer } from '../../../../test/support/openai-server.ts';
import {
  classify,
  ConfigError,
  CredentialsError,
  PoisonMessageError,
  RateLimitedError,
  RetriableError,
} from '../../../domain/errors.ts';
import { createOpenAI, retryAfterMs, type OpenAISettings } from './index.ts';

const API_KEY = 'sk-test-secret-key-123';
const retry = { maxAttempts: 3, initialMs: 5, maxMs: 2000 };

let server: OpenAIServer;

function settings(over: Partial<OpenAISettings> = {}): OpenAISettings {
  return {
    dimensions: 16,
    batchSize: 3,
    timeoutMs: 2000,
    openai: { baseUrl: server.url, apiKey: API_KEY, model: 'test-embed-16' },
    retry,
    ...over,
  };
}

function assertClose(actual: Float32Array, expected: number[]): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((v, i) => assert.ok(Math.abs(actual[i]! - v) < 1e-6, `component ${i}`));
}

describe('openai embedder', () => {
  before(async () => {
    server = await startOpenAIServer({ apiKey: API_KEY });
  });
  after(() => server.close());
  beforeEach(() => {
    server.requests.length = 0;
    Object.assign(server.knobs, { dimensions: 16, latencyMs: 0, fail429: 0, fail500: 0, dropConnections: 0 });
    Object.assign(server.knobs, { retryAfter: undefined, retryAfterMs: undefined });
  });

  it('embeds in batches, in input order (ordered by index, not by position in data)', async () => {
    const texts = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta'];
    const vectors = await createOpenAI(settings()).embed(texts);
    assert.equal(vectors.length, texts.length);
    texts.forEach((t, i) => assertClose(vectors[i]!, fakeEmbedding(t, 16)));
    assert.deepEqual(
      server.requests.map((r) => r.input),
      [['alpha', 'beta', 'gamma'], ['delta', 'epsilon', 'zeta'], ['eta']],
    );
    for (const r of server.requests) {
      assert.equal(r.model, 'test-embed-16');
      assert.equal(r.authorization, `Bearer ${API_KEY}`);
    }
  });

  it('makes no request for no texts', async () => {
    assert.deepEqual(await createOpenAI(settings()).embed([]), []);
    assert.equal(server.requests.length, 0);
  });

  it('retries 429s, honouring retry-after-ms', async () => {
    Object.assign(server.knobs, { fail429: 2, retryAfterMs: '60' });
    const started = performance.now();
    const [v] = await createOpenAI(settings()).embed(['x']);
    assertClose(v!, fakeEmbedding('x', 16));
    assert.deepEqual(
      server.requests.map((r) => r.status),
      [429, 429, 200],
    );
    assert.ok(performance.now() - started >= 119, 'waited for both Retry-Afters');
  });

  it('honours Retry-After in seconds', async () => {
    Object.assign(server.knobs, { fail429: 1, retryAfter: '1' });
    const started = performance.now();
    await createOpenAI(settings()).embed(['x']);
    assert.ok(performance.now() - started >= 999);
  });

  it('surfaces RateLimitedError with the wait once attempts run out', async () => {
    Object.assign(server.knobs, { fail429: 10, retryAfterMs: '1' });
    await assert.rejects(
      createOpenAI(settings()).embed(['x']),
      (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 1 && /429/.test(e.message),
    );
    assert.equal(server.requests.length, 3);
  });

  it('surfaces a Retry-After longer than the retry policy at once', async () => {
    Object.assign(server.knobs, { fail429: 1, retryAfter: '120' });
    await assert.rejects(
      createOpenAI(settings()).embed(['x']),
      (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 120_000,
    );
    assert.equal(server.requests.length, 1);
  });

  it('retries 500s and dropped connections, then gives up with RetriableError', async () => {
    Object.assign(server.knobs, { fail500: 1, dropConnections: 1 });
    await createOpenAI(settings()).embed(['x']);
    assert.deepEqual(
      server.requests.map((r) => r.status),
      [-1, 500, 200],
    );

    server.requests.length = 0;
    server.knobs.fail500 = 10;
    await assert.rejects(
      createOpenAI(settings()).embed(['x']),
      (e: unknown) => e instanceof RetriableError && /500/.test(e.message),
    );
    assert.equal(server.requests.length, 3);
  });

  it('times out slow requests per request and retries them', async () => {
    server.knobs.latencyMs = 300;
    await assert.rejects(
      createOpenAI(settings({ timeoutMs: 50, retry: { ...retry, maxAttempts: 2 } })).embed(['x']),
      (e: unknown) => e instanceof RetriableError && /timed out after 50 ms/.test(e.message),
    );
    assert.equal(server.requests.length, 2);
  });

  it('refuses vectors of the wrong dimension, naming expected and got', async () => {
    server.knobs.dimensions = 8;
    await assert.rejects(
      createOpenAI(settings()).embed(['x']),
      (e: unknown) =>
        e instanceof PoisonMessageError &&
        e.reason === 'wrong_dimension' &&
        /returned 8 dimensions, expected 16/.test(e.message),
    );
    assert.equal(server.requests.length, 1, 'not retried');
    await assert.rejects(
      createOpenAI(settings()).healthCheck(),
      (e: unknown) => e instanceof ConfigError && /DIMENSIONS/.test(e.message),
    );
  });

  it('a rejected input is a poison message, not retried', async () => {
    await assert.rejects(
      createOpenAI(settings()).embed(['ok', '']),
      (e: unknown) =>
        e instanceof PoisonMessageError && e.reason === 'embedding_rejected' && /400.*input/.test(e.message),
    );
    assert.equal(server.requests.length, 1);
  });

  it('a wrong key is a CredentialsError (the consumer pauses), a wrong URL a ConfigError, neither retried here, and the key appears in no error or log', async () => {
    const lines: string[] = [];
    const log = pino(
      { level: 'trace' },
      new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
    );
    const wrongKey = 'sk-wrong-key-456';
    const bad = createOpenAI(settings({ openai: { baseUrl: server.url, apiKey: wrongKey, model: 'm' }, log }));
    const error = await bad.embed(['x']).catch((e: unknown) => e);
    assert.ok(error instanceof CredentialsError, String(error));
    assert.equal(classify(error).kind, 'credentials');
    assert.match(error.message, /401/);
    assert.equal(server.requests.length, 1);

    server.knobs.fail500 = 1; // produce a retry log line too
    await createOpenAI(settings({ log })).embed(['x']);
    assert.ok(lines.length > 0, 'the retry was logged');
    for (const text of [error.message, String(error.cause ?? ''), ...lines]) {
      assert.ok(!text.includes(wrongKey) && !text.includes(API_KEY), text);
    }

    const wrongPath = createOpenAI(
      settings({ openai: { baseUrl: `${server.url}/nope`, apiKey: API_KEY, model: 'm' } }),
    );
    await assert.rejects(wrongPath.embed(['x']), (e: unknown) => e instanceof ConfigError && /404/.test(e.message));
  });

  it('an unreachable endpoint is retriable', async () => {
    const closed = await startOpenAIServer();
    await closed.close();
    await assert.rejects(
      createOpenAI(
        settings({ openai: { baseUrl: closed.url, apiKey: '', model: 'm' }, retry: { ...retry, maxAttempts: 2 } }),
      ).embed(['x']),
      (e: unknown) => e instanceof RetriableError && /unreachable/.test(e.message),
    );
  });

  it('stops at once when the caller aborts', async () => {
    server.knobs.latencyMs = 200;
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 20);
    await assert.rejects(createOpenAI(settings()).embed(['x'], controller.signal), /shutting down/);
    assert.equal(server.requests.length, 1);
  });

  it('health check passes against a healthy endpoint', async () => {
    await createOpenAI(settings()).healthCheck();
  });
});

describe('retryAfterMs', () => {
  it('reads retry-after-ms, seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '250' }), now), 250);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '2' }), now), 2000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }), now), 5000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'soon' }), now), undefined);
    assert.equal(retryAfterMs(new Headers(), now), undefined);
  });
});

describe('openai test server contract', () => {
  let contract: OpenAIServer;
  before(async () => {
    contract = await startOpenAIServer({ apiKey: 'k' });
  });
  after(() => contract.close());

  const post = (body: unknown, key = 'k'): Promise<Response> =>
    fetch(`${contract.url}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('answers 400 for a missing model or input, 401 for a wrong key, 404 elsewhere', async () => {
    assert.equal((await post({ input: ['x'] })).status, 400);
    const noInput = await post({ model: 'm' });
    assert.equal(noInput.status, 400);
    assert.equal(((await noInput.json()) as { error: { param: string } }).error.param, 'input');
    assert.equal((await post({ model: 'm', input: [] })).status, 400);
    assert.equal((await post('not json')).status, 400);
    assert.equal((await post({ model: 'm', input: ['x'] }, 'wrong')).status, 401);
    assert.equal((await fetch(`${contract.url}/models`)).status, 404);
  });

  it('accepts a single string input', async () => {
    const response = await post({ model: 'm', input: 'hello' });
    const body = (await response.json()) as { data: { index: number; embedding: number[] }[] };
    assert.equal(body.data.length, 1);
    assert.deepEqual(body.data[0]!.embedding, fakeEmbedding('hello', 16));
  });
});
