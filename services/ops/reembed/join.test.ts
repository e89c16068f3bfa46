import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planJoin, type OtherReembed, type WantedReembed } from './join.ts';

const wanted: WantedReembed = {
  from: 'hashing-64.v1',
  name: 'hashing-48',
  embedder: 'hashing',
  dimensions: 48,
  tenants: null,
};
const other = (over: Partial<OtherReembed> = {}): OtherReembed => ({
  sink: 'main',
  state: 'backfilling',
  from: 'hashing-64.v1',
  to: { name: 'hashing-48', version: 3, embedder: 'hashing', dimensions: 48, retired: false },
  backfill: { id: 7, state: 'running', done: 0, tenants: null },
  ...over,
});

test("another sink's open re-embed to the same model is joined: same version, same backfill", () => {
  assert.deepEqual(planJoin([other()], wanted), {
    join: true,
    sink: 'main',
    model: { name: 'hashing-48', version: 3 },
    backfillId: 7,
  });
  for (const state of ['ready', 'serving', 'rolled_back'] as const) {
    assert.equal(planJoin([other({ state })], wanted).join, true, state);
  }
});

test('the newest matching re-embed wins', () => {
  const older = other({ sink: 'a', to: { ...other().to, version: 2 }, backfill: null });
  const plan = planJoin([other({ sink: 'b' }), older], wanted);
  assert.deepEqual(plan.join && [plan.sink, plan.model.version], ['b', 3]);
});

test('no join: nothing open, or another model, source, embedder or dimensions, or a retired one', () => {
  assert.deepEqual(planJoin([], wanted), { join: false });
  const misses: Partial<OtherReembed>[] = [
    { state: 'retired' },
    { from: 'hashing-64.v2' },
    { to: { ...other().to, name: 'hashing-96' } },
    { to: { ...other().to, embedder: 'openai' } },
    { to: { ...other().to, dimensions: 96 } },
    { to: { ...other().to, retired: true } },
  ];
  for (const miss of misses) assert.deepEqual(planJoin([other(miss)], wanted), { join: false }, JSON.stringify(miss));
});

test('a backfill that has enqueued anything, ended, or covers other tenants is not shared', () => {
  const backfill = other().backfill!;
  const own: Partial<OtherReembed>[] = [
    { backfill: null },
    { backfill: { ...backfill, done: 1 } },
    { backfill: { ...backfill, state: 'done' } },
    { backfill: { ...backfill, state: 'failed' } },
    { backfill: { ...backfill, tenants: ['t1'] } },
  ];
  for (const o of own) {
    const plan = planJoin([other(o)], wanted);
    assert.deepEqual(plan.join && [plan.model.version, plan.backfillId], [3, null], JSON.stringify(o));
  }
  const paused = planJoin([other({ backfill: { ...backfill, state: 'paused' } })], wanted);
  assert.equal(paused.join && paused.backfillId, 7);
  // The same tenants in another order (or repeated) are the same scope.
  const scoped = planJoin([other({ backfill: { ...backfill, tenants: ['t2', 't1'] } })], {
    ...wanted,
    tenants: ['t1', 't2', 't1'],
  });
  assert.equal(scoped.join && scoped.backfillId, 7);
});
