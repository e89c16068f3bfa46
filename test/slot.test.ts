/**
 * Slot health. The invalidation is real, but on a PostgreSQL cluster of this test alone
 * (test/support/private-postgres.ts):
 * `max_slot_wal_keep_size` is server-wide, and lowering it on the shared stack could invalidate
 * the shared Debezium slot of every other pipeline. The test cluster gets a 1 MB limit, a logical
 * slot that nothing reads (as when Connect is stopped), and WAL written past the limit; `vecsync
 * status` must then show `wal_status=lost` as an error that names the recovery steps. The shared
 * stack's slot is checked to be reported with its wal_status too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { collectStatus, formatStatus } from '../services/ops/status/index.ts';
import { startPrivatePostgres, writeWalUntilLost, type PrivatePostgres } from './support/private-postgres.ts';
import { ensureStack } from './support/stack.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('replication slot health', { timeout: 5 * 60_000 }, () => {
  let cluster: PrivatePostgres | undefined;
  let url = '';

  before(async () => {
    await ensureStack();
    cluster = await startPrivatePostgres(55500);
    url = cluster.url;
    await run(process.execPath, [path.join(root, 'bin', 'vecsync.mjs'), 'migrate', '--only', 'source'], {
      cwd: root,
      env: { ...process.env, VECSYNC_SOURCE_URL: url },
      timeout: 120_000,
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('the shared slot is reported with its wal_status', async () => {
    const status = await collectStatus(loadConfig());
    const slot = status.replication_slots.find((s) => s.slot_name === 'vecsync_outbox');
    assert.ok(slot, JSON.stringify(status.replication_slots));
    assert.ok(['reserved', 'extended'].includes(slot.wal_status ?? ''), `wal_status ${slot.wal_status}`);
    assert.match(formatStatus(status), /replication slot vecsync_outbox: \w+, wal_status \w+/);
  });

  test('a slot invalidated by WAL past max_slot_wal_keep_size is an error naming the recovery', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const config = loadConfig({ ...process.env, VECSYNC_SOURCE_URL: url });
    try {
      await client.query(`SELECT pg_create_logical_replication_slot('vecsync_outbox', 'pgoutput')`);
      const before = await collectStatus(config);
      assert.equal(before.replication_slots[0]?.wal_status, 'reserved');
      assert.ok(!before.errors.some((e) => /is lost/.test(e)));
      assert.equal(await writeWalUntilLost(client, 'vecsync_outbox'), 'lost');
      const status = await collectStatus(config);
      assert.equal(status.replication_slots[0]?.wal_status, 'lost');
      const error = status.errors.find((e) => /replication slot vecsync_outbox is lost/.test(e));
      assert.ok(error, JSON.stringify(status.errors));
      assert.match(error, /vecsync connectors apply/);
      assert.match(error, /reconcile --repair/);
      assert.match(formatStatus(status), /error: replication slot vecsync_outbox is lost/);
    } finally {
      await client.end();
    }
  });
});
