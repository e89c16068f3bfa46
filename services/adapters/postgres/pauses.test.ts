import assert from 'node:assert/strict';
import { test } from 'node:test';
import type pg from 'pg';
import { pauseRecorder } from './pauses.ts';

test('pause rows are written in the order of the changes, even when an earlier write is slower', async () => {
  const done: string[] = [];
  let calls = 0;
  const pool = {
    async query(sql: string, values: unknown[]) {
      // The first write (the pause) is the slow one: unordered, the resume would land first.
      const delay = calls++ === 0 ? 50 : 0;
      await new Promise((r) => setTimeout(r, delay));
      done.push(`${sql.trim().split(/\s+/)[0]} ${String(values[1])}`);
      return { rows: [] };
    },
  } as unknown as pg.Pool;
  const record = pauseRecorder(pool, 'main', 'writer');
  const pause = record({ paused: true, dependency: 'pinecone', reason: 'unauthorized', detail: 'x' });
  const resume = record({ paused: false, dependency: 'pinecone', reason: 'unauthorized', detail: '' });
  await Promise.all([pause, resume]);
  assert.deepEqual(done, ['INSERT writer', 'DELETE writer']);
});

test('a failed write does not stop the next one', async () => {
  const done: string[] = [];
  let calls = 0;
  const pool = {
    async query(sql: string) {
      if (calls++ === 0) throw new Error('source database unavailable');
      done.push(sql.trim().split(/\s+/)[0]!);
      return { rows: [] };
    },
  } as unknown as pg.Pool;
  const record = pauseRecorder(pool, 'main', 'propagator');
  await assert.rejects(record({ paused: true, dependency: 'pgvector', reason: 'unauthorized', detail: 'x' }));
  await record({ paused: false, dependency: 'pgvector', reason: 'unauthorized', detail: '' });
  assert.deepEqual(done, ['DELETE']);
});
