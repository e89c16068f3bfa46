/**
 * `vecsync migrate` and `vecsync connectors apply` as an operator runs them: as subprocesses of
 * the real CLI, twice, and the second run must change nothing. Migrations run against throwaway
 * databases of this test (created by `migrate` itself, dropped afterwards); the connector test
 * uses the shared connector, which it must not restart.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { ConnectClient } from '../services/ops/connect/connect-client.ts';
import { renderConnectorFromConfig, slotName } from '../services/ops/connect/render.ts';
import { uniqueId } from './support/ids.ts';
import { waitFor } from './support/wait.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin', 'vecsync.mjs');
const config = loadConfig({ ...process.env, VECSYNC_EMBEDDER: 'hashing' });

function urlFor(database: string): string {
  const url = new URL(config.sourceUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs the CLI; rejects with its stderr when it exits non-zero. */
async function vecsync(args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [cli, ...args], {
      cwd: root,
      env: { ...process.env, VECSYNC_EMBEDDER: 'hashing', ...env },
      timeout: 180_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`vecsync ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Schema-only dump, comparable between runs. */
async function schemaDump(url: string): Promise<string> {
  const { stdout } = await run('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', url], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.replace(/^-- Dumped (from|by) .*$/gm, '').replace(/^\\(un)?restrict .*$/gm, '');
}

const scratch: string[] = [];

function scratchDatabases(label: string): { source: string; sink: string; env: Record<string, string> } {
  const id = uniqueId(label);
  const source = `vecsync_t_${id}`;
  const sink = `vecsync_vectors_t_${id}`;
  scratch.push(source, sink);
  return {
    source: urlFor(source),
    sink: urlFor(sink),
    env: { VECSYNC_SOURCE_URL: urlFor(source), VECSYNC_PGVECTOR_URL: urlFor(sink) },
  };
}

before(async () => {
  await waitFor(async () => (await query(urlFor('postgres'), 'SELECT 1')).length === 1, {
    timeoutMs: 15_000,
    description: `PostgreSQL at ${config.sourceUrl}`,
  });
});

after(async () => {
  for (const db of scratch) {
    await query(urlFor('postgres'), `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`).catch(
      () => undefined,
    );
  }
});

interface MigrateJson {
  changed: boolean;
  migrations: number;
  source?: { created: boolean; applied: string[] };
  sink?: { created: boolean; applied: string[] };
}

describe('vecsync migrate', { timeout: 300_000 }, () => {
  test('creates the databases, and a second run is a no-op', async () => {
    const db = scratchDatabases('twice');
    const first = JSON.parse(await vecsync(['migrate', '--json'], db.env)) as MigrateJson;
    assert.equal(first.source?.created, true);
    assert.equal(first.sink?.created, true);
    assert.ok(first.source!.applied.length >= 3, `source applied ${first.source!.applied.join(',')}`);
    assert.ok(first.sink!.applied.length >= 2, `sink applied ${first.sink!.applied.join(',')}`);
    const dumps = [await schemaDump(db.source), await schemaDump(db.sink)];
    const models = await query(
      db.source,
      'SELECT name, version, dimensions, chunker, chunker_version, state FROM vecsync.embedding_models',
    );
    assert.deepEqual(models, [
      {
        name: config.embedder.model,
        version: config.embedder.version,
        dimensions: config.embedder.dimensions,
        chunker: 'recursive-char',
        chunker_version: 1,
        state: 'active',
      },
    ]);
    const allowlist = await query<{ key: string }>(
      db.source,
      'SELECT key FROM vecsync.metadata_allowlist ORDER BY key',
    );
    assert.deepEqual(
      allowlist.map((r) => r.key),
      [...config.metadataAllowlist].sort(),
    );

    const text = await vecsync(['migrate'], db.env);
    assert.match(text, /^0 migrations applied/m);
    const second = JSON.parse(await vecsync(['migrate', '--json'], db.env)) as MigrateJson;
    assert.equal(second.migrations, 0);
    assert.equal(second.changed, false);
    assert.deepEqual(second.source?.applied, []);
    assert.deepEqual(second.sink?.applied, []);
    assert.equal(await schemaDump(db.source), dumps[0]);
    assert.equal(await schemaDump(db.sink), dumps[1]);
  });

  test('down migrations revert everything and up again restores a working outbox', async () => {
    const db = scratchDatabases('downup');
    const up = JSON.parse(await vecsync(['migrate', '--json'], db.env)) as MigrateJson;
    const dumps = [await schemaDump(db.source), await schemaDump(db.sink)];

    const down = JSON.parse(await vecsync(['migrate', '--down', 'all', '--json'], db.env)) as MigrateJson;
    assert.deepEqual(down.source?.applied, [...up.source!.applied].reverse());
    assert.deepEqual(down.sink?.applied, [...up.sink!.applied].reverse());
    const leftover = await query<{ name: string }>(
      db.source,
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'vecsync' AND c.relkind IN ('r', 'p', 'v') AND c.relname <> 'pgmigrations'
       UNION ALL SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'vecsync'
       UNION ALL SELECT pubname FROM pg_publication`,
    );
    assert.deepEqual(leftover, []);
    assert.deepEqual(await query(db.sink, `SELECT extname FROM pg_extension WHERE extname = 'vector'`), []);
    assert.deepEqual(
      await query(
        db.sink,
        `SELECT tablename FROM pg_tables WHERE schemaname = 'vecsync_sink' AND tablename <> 'pgmigrations'`,
      ),
      [],
    );

    // One step at a time down works too (here: up, then the last source migration only).
    const again = JSON.parse(await vecsync(['migrate', '--json'], db.env)) as MigrateJson;
    assert.deepEqual(again.source?.applied, up.source!.applied);
    assert.deepEqual(again.sink?.applied, up.sink!.applied);
    assert.equal(await schemaDump(db.source), dumps[0]);
    assert.equal(await schemaDump(db.sink), dumps[1]);
    const one = JSON.parse(await vecsync(['migrate', '--down', '--only', 'source', '--json'], db.env)) as MigrateJson;
    assert.deepEqual(one.source?.applied, up.source!.applied.slice(-1));
    assert.equal(one.sink, undefined);
    await vecsync(['migrate'], db.env);

    // The restored triggers work: a document insert writes its outbox and state rows.
    await query(
      db.source,
      `INSERT INTO vecsync.documents (tenant_id, document_id, title, body) VALUES ('t', 'd', 'a', 'b')`,
    );
    const rows = await query<{ operation: string; lane: string }>(
      db.source,
      'SELECT operation, lane FROM vecsync.vector_sync_outbox',
    );
    assert.deepEqual(rows, [{ operation: 'upsert', lane: 'live' }]);
    assert.equal((await query(db.source, 'SELECT 1 FROM vecsync.state_outbox')).length, 1);
  });
});

describe('vecsync connectors apply', { timeout: 300_000 }, () => {
  test('a second apply is a no-op: the connector is not restarted', async () => {
    await vecsync(['migrate']);
    await vecsync(['connectors', 'apply', '--json']);
    const desired = await renderConnectorFromConfig(config);
    const connect = new ConnectClient(config.connectUrl);
    const slot = slotName(config.topicPrefix);
    const snapshot = async () => {
      const [status, live, slots] = await Promise.all([
        connect.getStatus(desired.name),
        connect.getConfig(desired.name),
        // A restarted task reconnects: a new walsender backend holds the slot.
        query<{ active_pid: number | null; backend_start: string | null }>(
          config.sourceUrl,
          `SELECT s.active_pid, r.backend_start::text FROM pg_replication_slots s
             LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = $1`,
          [slot],
        ),
      ]);
      assert.ok(status && live);
      return {
        tasks: status.tasks.map((t) => ({ id: t.id, state: t.state, worker_id: t.worker_id })),
        connector: status.connector.state,
        config: live,
        slot: slots[0],
      };
    };
    const before = await snapshot();
    assert.equal(before.connector, 'RUNNING');
    assert.ok(before.tasks.length > 0 && before.tasks.every((t) => t.state === 'RUNNING'));
    assert.ok(before.slot?.active_pid, `slot ${slot} is held by the connector`);

    const report = JSON.parse(await vecsync(['connectors', 'apply', '--json'])) as {
      changed: boolean;
      topics: { created: string[] };
    };
    assert.equal(report.changed, false);
    assert.deepEqual(report.topics.created, []);
    // Give a (wrong) restart time to show up before comparing.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.deepEqual(await snapshot(), before);
  });
});
