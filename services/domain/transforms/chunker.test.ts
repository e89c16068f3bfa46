import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, PoisonMessageError } from '../errors.ts';
import { createChunker, RECURSIVE_CHAR } from './chunker.ts';
import { sha256Hex } from './content-hash.ts';

const chunker = createChunker({ size: 100, overlap: 20, maxChunks: 50 });

const paragraph = (n: number): string =>
  `Paragraph ${n} talks about vector stores, outboxes and the way Kafka keeps one document's events in order.`;

describe('chunker', () => {
  it('names itself and its settings (part of an embedding model registration)', () => {
    assert.equal(chunker.name, 'recursive-char');
    assert.equal(chunker.version, RECURSIVE_CHAR.version);
    assert.deepEqual(chunker.settings, { size: 100, overlap: 20, maxChunks: 50 });
  });

  it('has no chunks for an empty or whitespace-only body', async () => {
    for (const body of ['', ' ', '\n\n\t  \r\n']) assert.deepEqual(await chunker.chunk(body), []);
  });

  it('returns one chunk for a short body, hashed with sha256', async () => {
    const chunks = await chunker.chunk('A short body.');
    assert.deepEqual(chunks, [{ index: 0, content: 'A short body.', contentHash: sha256Hex('A short body.') }]);
  });

  it('splits long bodies into indexed chunks no longer than the size, on paragraph boundaries first', async () => {
    const body = [1, 2, 3, 4].map(paragraph).join('\n\n');
    const chunks = await chunker.chunk(body);
    assert.ok(chunks.length >= 4, `got ${chunks.length}`);
    chunks.forEach((c, i) => {
      assert.equal(c.index, i);
      assert.ok(c.content.length <= 100, c.content);
      assert.equal(c.contentHash, sha256Hex(c.content));
    });
    assert.ok(chunks[0]!.content.startsWith('Paragraph 1'));
  });

  it('is deterministic: same body, same chunks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 2000 }), async (body) => {
        assert.deepEqual(await chunker.chunk(body), await chunker.chunk(body));
      }),
      { numRuns: 200 },
    );
  });

  it('keeps every word of the body in some chunk', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.stringMatching(/^[a-z]{1,12}$/), { maxLength: 300 }), async (words) => {
        const chunks = await chunker.chunk(words.join(' '));
        const seen = new Set(chunks.flatMap((c) => c.content.split(/\s+/)));
        for (const w of words) assert.ok(seen.has(w), w);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses more than maxChunks with PoisonMessageError(too_many_chunks), before and after splitting', async () => {
    const small = createChunker({ size: 100, overlap: 0, maxChunks: 3 });
    // 5 paragraphs of 58 characters: short enough to pass the lower bound, 5 chunks once split.
    const body = [1, 2, 3, 4, 5].map((n) => `${n}`.padEnd(58, '.')).join('\n\n');
    assert.ok(body.length <= 300);
    await assert.rejects(
      small.chunk(body),
      (e: unknown) =>
        e instanceof PoisonMessageError && e.reason === 'too_many_chunks' && /into 5 chunks/.test(e.message),
    );
    await assert.rejects(small.chunk('x'.repeat(10_000)), /at least 100 chunks/);
  });

  it('rejects settings where the overlap is not smaller than the size', () => {
    assert.throws(() => createChunker({ size: 10, overlap: 10, maxChunks: 1 }), ConfigError);
  });
});
