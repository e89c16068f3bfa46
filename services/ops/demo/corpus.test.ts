import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_TENANTS, generateCorpus, TOPICS } from './corpus.ts';

test('the corpus is deterministic, spans every tenant and gives every document an owning group', () => {
  const a = generateCorpus(120);
  const b = generateCorpus(120);
  assert.deepEqual(a, b);
  assert.deepEqual(new Set(a.map((d) => d.tenant_id)), new Set(DEMO_TENANTS));
  const groups = new Set(Object.values(TOPICS).map((t) => t.group));
  for (const doc of a) {
    assert.ok(
      doc.acl.some((p) => groups.has(p as never)),
      `${doc.document_id} has no owning group`,
    );
    assert.ok(doc.body.length > 40);
  }
  assert.equal(new Set(a.map((d) => `${d.tenant_id}:${d.document_id}`)).size, 120);
  assert.notDeepEqual(generateCorpus(5, 1), generateCorpus(5, 2));
  for (const tenant of DEMO_TENANTS) {
    const topics = new Set(a.filter((d) => d.tenant_id === tenant).map((d) => d.metadata.category));
    assert.equal(topics.size, Object.keys(TOPICS).length, `${tenant} lacks a topic`);
  }
});
