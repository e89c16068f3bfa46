import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_ARTICLES, DEMO_TENANTS, generateCorpus } from './corpus.ts';

test('demo articles: readable by their reader, ids distinct from the generated notes, one per tenant', () => {
  const notes = new Set(generateCorpus(1200).map((d) => `${d.tenant_id}:${d.document_id}`));
  for (const a of DEMO_ARTICLES) {
    assert.ok(a.acl.includes(a.reader), `${a.document_id}: reader ${a.reader} not in its ACL`);
    assert.ok(!notes.has(`${a.tenant_id}:${a.document_id}`), `${a.document_id} collides with a note`);
    assert.ok(a.paraphrase.length > 10 && a.body.length > 40);
  }
  assert.deepEqual(new Set(DEMO_ARTICLES.map((a) => a.tenant_id)), new Set(DEMO_TENANTS));
});
