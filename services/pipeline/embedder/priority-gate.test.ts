import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gateSlice, PriorityGate } from './priority-gate.ts';

test('live waiters are served before bulk waiters that queued earlier', async () => {
  const gate = new PriorityGate(1);
  const order: string[] = [];
  let releaseFirst!: () => void;
  const first = gate.run('bulk', () =>
    new Promise<void>((r) => (releaseFirst = r)).then(() => void order.push('bulk-0')),
  );
  const queued = [
    gate.run('bulk', async () => void order.push('bulk-1')),
    gate.run('bulk', async () => void order.push('bulk-2')),
    gate.run('live', async () => void order.push('live-1')),
  ];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(gate.queued, { live: 1, bulk: 2 });
  releaseFirst();
  await Promise.all([first, ...queued]);
  assert.deepEqual(order, ['bulk-0', 'live-1', 'bulk-1', 'bulk-2']);
});

test('concurrency bounds the number of running tasks and a failure frees its slot', async () => {
  const gate = new PriorityGate(2);
  let running = 0;
  let peak = 0;
  const task = async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 5));
    running--;
  };
  await Promise.all(Array.from({ length: 6 }, (_, i) => gate.run(i % 2 ? 'live' : 'bulk', task)));
  assert.equal(peak, 2);
  await assert.rejects(
    gate.run('live', async () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  await gate.run('bulk', async () => undefined); // would hang if the failed task kept its slot
});

test('rejects a non-positive concurrency', () => {
  assert.throws(() => new PriorityGate(0), RangeError);
});

test('bulk work passes the gate one compute batch at a time; live work a whole request', () => {
  assert.equal(gateSlice('bulk', 64, 1), 1);
  assert.equal(gateSlice('bulk', 64, 8), 8);
  assert.equal(gateSlice('bulk', 4, 8), 4);
  assert.equal(gateSlice('bulk', 64, undefined), 64); // a remote provider answers a request at once
  assert.equal(gateSlice('live', 64, 1), 64);
  assert.equal(gateSlice('important', 64, 1), 64);
});
