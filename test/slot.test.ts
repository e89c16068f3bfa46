/**
 * Slot health. The invalidation is real, but on a PostgreSQL cluster of this test alone:
 * `max_slot_wal_keep_size` is server-wide, and lowering it on the shared stack could invalidate
 * the shared Debezium slot of every other pipeline. The test cluster gets a 1 MB limit, a logical
 * slot that nothing reads (as when Connect is stopped), and WAL written past the limit; `vecsync
 * status` must then show `wal_status=lost` as an error that names the recovery steps. The shared
 * stack's slot is checked to be reported with its wal_status too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { collectStatus, formatStatus } from '../services/ops/status/index.ts';
import { ensureStack } from './support/stack.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PORT = 55000 + Math.floor(Math.random() * 400) + 500;
const url = `postgres://postgres@127.0.0.1:${PORT}/vecsync`;

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { timeout: 120_000 });
}

describe('replication slot health', { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vecsync-slot-'));
  const data = path.join(dir, 'data');
  let started = false;

  before(async () => {
    await ensureStack();
    const { stdout } = await run('id', ['-u', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number((await run('id', ['-g', 'postgres'])).stdout.trim()));
    await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const opts = [
      `-c port=${PORT}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${dir}`,
      '-c wal_level=logical',
      '-c max_slot_wal_keep_size=1MB',
      '-c max_wal_size=32MB',
      '-c min_wal_size=32MB',
      '-c fsync=off',
    ].join(' ');
    await asPostgres('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
    started = true;
    await run(process.execPath, [path.join(root, 'bin', 'vecsync.mjs'), 'migrate', '--only', 'source'], {
      cwd: root,
      env: { ...process.env, VECSYNC_SOURCE_URL: url },
      timeout: 120_000,
    });
  });
  after(async () => {
    if (started) await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
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
      await client.query('CREATE TABLE junk (id bigserial, filler text)');
      let walStatus = 'reserved';
      for (let round = 0; round < 10 && walStatus !== 'lost'; round++) {
        await client.query(`INSERT INTO junk (filler) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 40000) g`);
        await client.query('SELECT pg_switch_wal()');
        await client.query('CHECKPOINT');
        const { rows } = await client.query<{ wal_status: string }>(
          `SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'vecsync_outbox'`,
        );
        walStatus = rows[0]!.wal_status;
      }
      assert.equal(walStatus, 'lost');
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
