import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  InvalidKeyError,
  chunkId,
  documentKey,
  idempotencyKey,
  invalidIdReason,
  parseChunkId,
  parseDocumentKey,
} from './types.ts';

describe('document keys and chunk ids', () => {
  it('builds and parses tenant:document and tenant:document#index', () => {
    assert.equal(documentKey('acme', 'doc-1'), 'acme:doc-1');
    assert.deepEqual(parseDocumentKey('acme:doc-1'), { tenant_id: 'acme', document_id: 'doc-1' });
    assert.equal(chunkId('acme', 'doc-1', 7), 'acme:doc-1#7');
    assert.deepEqual(parseChunkId('acme:doc-1#7'), { tenant_id: 'acme', document_id: 'doc-1', chunk_index: 7 });
    assert.equal(idempotencyKey('acme:doc-1#7', 12), 'acme:doc-1#7:12');
  });

  it('accepts ordinary ids: uuids, emails, paths, file names, non-ASCII, separators inside document ids', () => {
    for (const id of [
      '6f1c2a9e-8d7b-4c1e-9a43-2f0e5b7d1c3a',
      'a.b@example.com',
      'wiki/Page_(x)',
      'My Report.pdf',
      'café-β',
      'urn:x:1',
      'a#1',
    ]) {
      assert.equal(invalidIdReason('document_id', id), undefined, id);
      assert.deepEqual(parseDocumentKey(documentKey('t', id)), { tenant_id: 't', document_id: id });
      assert.deepEqual(parseChunkId(chunkId('t#x', id, 3)), { tenant_id: 't#x', document_id: id, chunk_index: 3 });
    }
  });

  it('rejects ids that would make keys ambiguous, break sink ids, or hide in logs', () => {
    for (const bad of ['', 'tab\there', 'nul\u0000', 'del\u007f', 'x'.repeat(201), 'é'.repeat(101)]) {
      assert.throws(() => documentKey('t', bad), InvalidKeyError, JSON.stringify(bad));
      assert.throws(() => documentKey(bad, 'd'), InvalidKeyError, JSON.stringify(bad));
    }
    assert.throws(() => documentKey('a:b', 'd'), InvalidKeyError, 'a tenant id with ":"');
    assert.throws(() => parseDocumentKey('no-separator'), InvalidKeyError);
    assert.throws(() => chunkId('t', 'd', -1), InvalidKeyError);
    assert.throws(() => chunkId('t', 'd', 1.5), InvalidKeyError);
    assert.throws(() => parseChunkId('t:d#01'), InvalidKeyError);
    assert.throws(() => parseChunkId('t:d'), InvalidKeyError);
  });

  it('round-trips every valid id through chunk ids', () => {
    const tenant = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
      .filter((s) => invalidIdReason('tenant_id', s) === undefined);
    const doc = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
      .filter((s) => invalidIdReason('document_id', s) === undefined);
    fc.assert(
      fc.property(tenant, doc, fc.nat({ max: 100_000 }), (t, d, index) => {
        assert.deepEqual(parseChunkId(chunkId(t, d, index)), { tenant_id: t, document_id: d, chunk_index: index });
        assert.deepEqual(parseDocumentKey(documentKey(t, d)), { tenant_id: t, document_id: d });
      }),
    );
  });
});
