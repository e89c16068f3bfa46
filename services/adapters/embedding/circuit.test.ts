import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RetriableError } from '../../domain/errors.ts';
import { startOpenAIServer, type OpenAIServer } from '../../../test/support/openai-server.ts';
import { createEmbedder } from './index.ts';
import { withCircuitBreaker } from './circuit.ts';

let server: OpenAIServer;
before(async () => {
  server = await startOpenAIServer({ dimensions: 8 });
});
after(async () => {
  await server.close();
});

test('the circuit opens on repeated provider failures, fails fast, and closes after a successful probe', async () => {
  const embedder = createEmbedder({
    type: 'openai',
    dimensions: 8,
    batchSize: 16,
    timeoutMs: 2000,
    openai: { baseUrl: server.url, apiKey: '', model: 'fake' },
    // No request-level retries: each failure reaches the breaker.
    retry: { maxAttempts: 1, initialMs: 1, maxMs: 1 },
  });
  const guarded = withCircuitBreaker(embedder, {
    resetTimeoutMs: 300,
    volumeThreshold: 3,
    errorThresholdPercentage: 50,
  });
  server.knobs.fail500 = 1000;
  for (let i = 0; i < 3; i++) await assert.rejects(guarded.embed(['a']), RetriableError);
  assert.equal(guarded.circuit, 'open');
  const seen = server.requests.length;
  const fast = await guarded.embed(['b']).catch((e: unknown) => e);
  assert.ok(fast instanceof RetriableError && /circuit open/.test(fast.message), String(fast));
  assert.ok((fast as RetriableError).retryAfterMs! <= 300);
  assert.equal(server.requests.length, seen, 'an open circuit does not call the provider');

  server.knobs.fail500 = 0;
  await new Promise((r) => setTimeout(r, 350));
  const [vector] = await guarded.embed(['c']);
  assert.equal(vector!.length, 8);
  assert.equal(guarded.circuit, 'closed');
});

test('bad input does not open the circuit', async () => {
  const embedder = createEmbedder({
    type: 'openai',
    dimensions: 8,
    batchSize: 16,
    timeoutMs: 2000,
    openai: { baseUrl: server.url, apiKey: '', model: 'fake' },
    retry: { maxAttempts: 1, initialMs: 1, maxMs: 1 },
  });
  const guarded = withCircuitBreaker(embedder, {
    resetTimeoutMs: 300,
    volumeThreshold: 3,
    errorThresholdPercentage: 50,
  });
  server.knobs.dimensions = 4; // wrong dimension: a poison message, not an outage
  for (let i = 0; i < 5; i++) await assert.rejects(guarded.embed(['x']), /wrong_dimension/);
  assert.equal(guarded.circuit, 'closed');
  server.knobs.dimensions = 8;
});

test('the guarded embedder keeps the provider compute batch, which the embedder slices bulk work by', () => {
  const provider = {
    name: 'local',
    dimensions: 4,
    computeBatch: 2,
    embed: async () => [],
    healthCheck: async () => {},
  };
  assert.equal(withCircuitBreaker(provider).computeBatch, 2);
  assert.equal(withCircuitBreaker({ ...provider, computeBatch: undefined }).computeBatch, undefined);
});
