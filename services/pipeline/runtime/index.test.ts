import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupIdFor } from './index.ts';

const config = (version: number) => ({
  groupPrefix: 'p',
  sink: { type: 'pgvector' as const, name: 'main' },
  embedder: { model: 'hashing-384', version },
});

test('embedder and writer groups include the model key; two models never share a group', () => {
  assert.equal(groupIdFor(config(1), 'embedder'), 'p.embedder.hashing-384.v1');
  assert.equal(groupIdFor(config(1), 'writer'), 'p.main.writer.hashing-384.v1');
  assert.notEqual(groupIdFor(config(1), 'embedder'), groupIdFor(config(2), 'embedder'));
  assert.notEqual(groupIdFor(config(1), 'writer'), groupIdFor(config(2), 'writer'));
});

test('the propagator and the reconciler keep one group per sink, whatever the model', () => {
  assert.equal(groupIdFor(config(1), 'propagator'), 'p.main.propagator');
  assert.equal(groupIdFor(config(2), 'propagator'), 'p.main.propagator');
  assert.equal(groupIdFor(config(2), 'reconciler'), 'p.main.reconciler');
});
