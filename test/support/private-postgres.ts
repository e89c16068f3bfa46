/**
 * A PostgreSQL cluster of one test, for what must not happen to the shared stack's: an invalidated
 * replication slot. `max_slot_wal_keep_size` is server-wide, and lowering it on the shared stack
 * could invalidate the shared Debezium slot of every other pipeline; this cluster gets a 1 MB limit.
 * Same binaries as the stack (initdb and pg_ctl on PATH, run as the `postgres` user: initdb refuses
 * root), its own data dir, port and socket dir, all removed by `stop()`.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PrivatePostgres {
  port: number;
  /** The `vecsync` database (created; not migrated). */
  url: string;
  /** Stops the cluster (immediate) and removes its directory. */
  stop(): Promise<void>;
}

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { timeout: 120_000 });
}

/** Starts a logical-replication cluster with `max_slot_wal_keep_size=1MB` on a port in [from, from + 400). */
export async function startPrivatePostgres(from = 55500): Promise<PrivatePostgres> {
  const port = from + Math.floor(Math.random() * 400);
  const dir = mkdtempSync(path.join(tmpdir(), 'vecsync-pg-'));
  const data = path.join(dir, 'data');
  let started = false;
  const stop = async () => {
    if (started) await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dir, uid, gid);
    await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const opts = [
      `-c port=${port}`,
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
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE vecsync');
    } finally {
      await admin.end();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: `postgres://postgres@127.0.0.1:${port}/vecsync`, stop };
}

/**
 * Writes WAL (into a table of its own, outside the publication) and forces checkpoints until the
 * slot's `wal_status` is `lost`; returns the last wal_status seen (the caller asserts `lost`).
 */
export async function writeWalUntilLost(client: pg.Client, slot: string, rounds = 10): Promise<string> {
  await client.query('CREATE TABLE IF NOT EXISTS public.wal_filler (id bigserial, filler text)');
  let walStatus = '';
  for (let round = 0; round < rounds && walStatus !== 'lost'; round++) {
    await client.query(
      `INSERT INTO public.wal_filler (filler) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 40000) g`,
    );
    await client.query('SELECT pg_switch_wal()');
    await client.query('CHECKPOINT');
    const { rows } = await client.query<{ wal_status: string }>(
      `SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    walStatus = rows[0]?.wal_status ?? 'no such slot';
  }
  return walStatus;
}
