import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, isPoison } from '../../domain/errors.ts';
import type { DocumentWrite, SearchQuery } from './types.ts';
import {
  checkAclWrite,
  checkDocumentRef,
  checkDocumentWrite,
  checkQueryDimensions,
  checkSearchQuery,
  chunkCountIn,
  documentKey,
  invalidWrite,
} from './validate.ts';
import { sampleWrite } from './test-fixtures.ts';

const write = sampleWrite;

describe('store-neutral item checks', () => {
  it('accepts a well-formed write', () => {
    assert.equal(checkDocumentWrite(write(), 3), null);
    assert.equal(checkDocumentWrite(write({ acl: null }), 3), null);
    assert.equal(checkDocumentWrite(write({ chunkCount: 0, chunks: [] }), 3), null);
    assert.equal(checkDocumentWrite(write({ previousChunkCount: 7 }), 3), null);
  });

  it('rejects what would fail the batch or corrupt the index, as poison', () => {
    const nan = write();
    nan.chunks[0]!.embedding[1] = Number.NaN;
    const cases: [string, DocumentWrite, string][] = [
      ['wrong dimensions', write({}, 4), 'invalid_vector'],
      ['NaN', nan, 'invalid_vector'],
      ['index beyond chunkCount', write({ chunkCount: 1 }), 'invalid_write'],
      ['repeated index', write({ chunks: [write().chunks[0]!, write().chunks[0]!] }), 'invalid_write'],
      ['negative version', write({ documentVersion: -1 }), 'invalid_write'],
      ['fractional chunkCount', write({ chunkCount: 1.5 }), 'invalid_write'],
      ['bad previousChunkCount', write({ previousChunkCount: 1.5 }), 'invalid_write'],
      [': in tenant', write({ tenantId: 'a:b' }), 'invalid_write'],
      ['empty document id', write({ documentId: '' }), 'invalid_write'],
      ['control character', write({ documentId: 'a\u0000b' }), 'invalid_write'],
      [
        'non-string principal',
        write({ acl: { principals: [1 as unknown as string], aclVersion: 1 } }),
        'invalid_write',
      ],
      ['bad aclVersion', write({ acl: { principals: [], aclVersion: Number.NaN } }), 'invalid_write'],
      ['metadata array', write({ metadata: [] as unknown as Record<string, unknown> }), 'invalid_write'],
      ['metadata with bigint', write({ metadata: { n: 1n } }), 'invalid_write'],
      ['missing title', write({ title: undefined as unknown as string }), 'invalid_write'],
    ];
    for (const [name, w, reason] of cases) {
      const error = checkDocumentWrite(w, 3);
      assert.ok(error && isPoison(error), name);
      assert.equal(error.reason, reason, name);
    }
  });

  it("runs a store's own chunk check after the shared ones, with the chunk's place", () => {
    const seen: string[] = [];
    const error = checkDocumentWrite(write(), 3, {
      chunk: (_w, chunk, at) => {
        seen.push(at);
        return chunk.index === 1 ? invalidWrite(`${at}: too big for this store`) : null;
      },
    });
    assert.deepEqual(seen, ['t1:doc:1#x#0', 't1:doc:1#x#1']);
    assert.match(String(error?.message), /t1:doc:1#x#1: too big for this store/);
    // Not called for a chunk the shared checks already refuse.
    let called = false;
    checkDocumentWrite(write({}, 4), 3, { chunk: () => ((called = true), null) });
    assert.equal(called, false);
  });

  it('checks ACL writes and delete refs', () => {
    const ok = { tenantId: 't', documentId: 'd', principals: ['a'], aclVersion: 1, chunkCount: 1 };
    assert.equal(checkAclWrite(ok), null);
    assert.equal(checkAclWrite({ ...ok, chunkCounts: { 'a.v1': 3 } }), null);
    assert.ok(checkAclWrite({ ...ok, aclVersion: -1 }));
    assert.ok(checkAclWrite({ ...ok, chunkCount: -1 }));
    assert.ok(checkAclWrite({ ...ok, chunkCounts: { 'a.v1': 0.5 } }));
    assert.ok(checkAclWrite({ ...ok, principals: 'a' as unknown as string[] }));
    assert.equal(checkDocumentRef({ tenantId: 't', documentId: 'd' }), null);
    assert.equal(checkDocumentRef({ tenantId: 't', documentId: 'd', version: 3, aclVersion: 2 }), null);
    assert.ok(checkDocumentRef({ tenantId: '', documentId: 'd' }));
    assert.ok(checkDocumentRef({ tenantId: 't:x', documentId: 'd' }));
    assert.ok(checkDocumentRef({ tenantId: 't', documentId: 'd', version: -1 }));
  });

  it("an ACL write's chunk count in an index is that model's, else the document's", () => {
    const w = { tenantId: 't', documentId: 'd', principals: [], aclVersion: 1, chunkCount: 2, chunkCounts: { b: 9 } };
    assert.equal(chunkCountIn(w, 'b'), 9);
    assert.equal(chunkCountIn(w, 'a'), 2);
  });

  it('document keys tell documents apart however their ids look', () => {
    assert.notEqual(
      documentKey({ tenantId: 'a', documentId: 'b:c' }),
      documentKey({ tenantId: 'a:b', documentId: 'c' }),
    );
  });

  it('rejects searches no store can answer, as ConfigError', () => {
    const query: SearchQuery = { modelKey: 'm', tenantId: 't', principal: 'p', vector: new Float32Array(3), topK: 5 };
    checkSearchQuery(query);
    checkQueryDimensions(query, 3);
    for (const bad of [
      { ...query, topK: 0 },
      { ...query, topK: 1001 },
      { ...query, principal: '' },
      { ...query, vector: Float32Array.of(Number.NaN) },
    ]) {
      assert.throws(() => checkSearchQuery(bad), ConfigError);
    }
    assert.throws(() => checkQueryDimensions(query, 4), /3 dimensions, model m has 4/);
  });
});
