import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpsertEvent } from '../../domain/types.ts';
import { decide } from './plan.ts';
import type { SourceDocument } from './source.ts';

const limits = { maxBodyBytes: 100, maxMetadataBytes: 50 };
const event = { op: 'upsert', tenant_id: 't', document_id: 'd', version: 3, acl_version: 2 } as UpsertEvent;
const doc = (over: Partial<SourceDocument> = {}): SourceDocument => ({
  tenantId: 't',
  documentId: 'd',
  version: 3,
  aclVersion: 4,
  status: 'active',
  title: 'T',
  body: 'b',
  bodyBytes: 1,
  metadata: {},
  metadataBytes: 2,
  acl: ['a'],
  contentHash: 'h',
  ...over,
});

describe('embedder decide', () => {
  it('embeds the source row at the event version', () => {
    assert.equal(decide(event, doc(), limits).kind, 'embed');
  });
  it('skips when the source moved on or the document left', () => {
    assert.equal(decide(event, undefined, limits).kind, 'skip');
    assert.equal(decide(event, doc({ version: 4 }), limits).kind, 'skip');
    assert.equal(decide(event, doc({ status: 'archived' }), limits).kind, 'skip');
  });
  it('withdraws an oversized body or metadata with its reason', () => {
    const body = decide(event, doc({ body: null, bodyBytes: 101 }), limits);
    assert.equal(body.kind, 'withdraw');
    assert.equal(body.kind === 'withdraw' && body.error.reason, 'body_too_large');
    const meta = decide(event, doc({ metadata: null, metadataBytes: 51 }), limits);
    assert.equal(meta.kind === 'withdraw' && meta.error.reason, 'metadata_too_large');
    assert.equal(decide(event, doc({ bodyBytes: 101, body: 'x'.repeat(101) }), limits).kind, 'withdraw');
    assert.equal(decide(event, doc({ bodyBytes: 100, body: 'x' }), limits).kind, 'embed');
  });
  it('refuses an event ahead of its source', () => {
    assert.throws(() => decide(event, doc({ version: 2 }), limits), /version_ahead_of_source/);
  });
});
