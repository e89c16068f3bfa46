import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../../domain/errors.ts';
import { createHashing, hashingEmbed } from './index.ts';

const embedder = createHashing({ dimensions: 384 });

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot; // both are unit vectors
}

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

async function similarity(a: string, b: string): Promise<number> {
  const [va, vb] = await embedder.embed([a, b]);
  return cosine(va!, vb!);
}

describe('hashing embedder', () => {
  it('returns one unit vector of the configured dimensions per text, in order', async () => {
    const texts = ['first text', 'second text', '', '!!!'];
    const vectors = await embedder.embed(texts);
    assert.equal(vectors.length, texts.length);
    for (const v of vectors) {
      assert.ok(v instanceof Float32Array);
      assert.equal(v.length, 384);
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
    }
    assert.deepEqual(vectors[1], hashingEmbed('second text', 384));
    assert.equal(embedder.name, 'hashing');
    assert.equal(embedder.dimensions, 384);
  });

  it('is deterministic and unit-norm for any text and any dimensions', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), fc.integer({ min: 2, max: 1024 }), (text, dims) => {
        const a = hashingEmbed(text, dims);
        assert.equal(a.length, dims);
        assert.deepEqual(a, hashingEmbed(text, dims));
        assert.ok(Math.abs(norm(a) - 1) < 1e-4, `norm ${norm(a)} for ${JSON.stringify(text)}`);
      }),
      { numRuns: 500 },
    );
  });

  it('scores related texts higher than unrelated ones', async () => {
    const base = 'Kafka consumers commit offsets after the sink acknowledges the write.';
    const related = [
      'The consumer commits its Kafka offset only after the sink acknowledged the write.',
      'kafka consumer offsets are committed once the sink acknowledges',
    ];
    const unrelated = [
      'Bake the bread at two hundred degrees until the crust turns golden.',
      'The mountain trail climbs steeply through pine forest to the lake.',
    ];
    for (const r of related) {
      for (const u of unrelated) {
        const rs = await similarity(base, r);
        const us = await similarity(base, u);
        assert.ok(rs > us + 0.2, `related ${rs.toFixed(3)} vs unrelated ${us.toFixed(3)}: ${r} / ${u}`);
      }
    }
  });

  it('matches inflections and typos through character n-grams', async () => {
    assert.ok((await similarity('permissions', 'permission')) > 0.5);
    assert.ok((await similarity('reconciliation', 'reconcilation')) > 0.5);
    assert.ok((await similarity('permissions', 'bread')) < 0.2);
  });

  it('ignores case and Unicode normalization form', () => {
    const composed = hashingEmbed('Café Ünïcode', 64);
    assert.deepEqual(hashingEmbed('CAFÉ ünïcode', 64), composed);
    assert.deepEqual(hashingEmbed('Cafe\u0301 U\u0308ni\u0308code', 64), composed);
  });

  it('uses word order (bigrams): same words in another order are similar but not identical', async () => {
    const s = await similarity('dog bites man', 'man bites dog');
    assert.ok(s > 0.6 && s < 0.999, String(s));
  });

  it('gives texts without words distinct non-zero vectors', async () => {
    const [a, b] = await embedder.embed(['!!!', '???']);
    assert.ok(cosine(a!, b!) < 0.999);
  });

  it('stops when the signal is already aborted', async () => {
    await assert.rejects(embedder.embed(['x'], AbortSignal.abort(new Error('stop'))), /stop/);
  });

  it('health check passes; bad dimensions are a ConfigError', async () => {
    await embedder.healthCheck();
    assert.throws(() => createHashing({ dimensions: 1 }), ConfigError);
    assert.throws(() => createHashing({ dimensions: 3.5 }), ConfigError);
  });
});
