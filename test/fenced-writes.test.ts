/**
 * Fenced sink writes (guarantee 8: "the sink rejects an older write even when it arrives late"),
 * against the real pgvector sink database.
 *
 * 1. The sink's own fence, through the `Sink` interface: a write, ACL or delete older than what
 *    the sink holds changes nothing, and the SQL decides exactly like the pure rule (`fence.ts`)
 *    for random sequences of writes, deletes and ACL changes.
 * 2. Lost ledger locks, with the real pipeline: the writer runs as its own process
 *    (`vecsync run writer`), its sink write is slowed by a `pg_sleep` trigger, and while it sleeps
 *    its ledger lock is lost: once with the process alive (its source connections terminated: a
 *    source restart or an idle timeout), once by SIGKILL. The document is then hard-deleted with
 *    plain SQL, the delete travels through the real triggers, Debezium and the propagator, and
 *    nothing of the document is left in the sink.
 *
 * The trigger sits on the active model's table (the table the spawned writer writes to) but fires
 * only for this test's sink name and tenant, so no other pipeline on the shared stack is slowed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import {
  afterDelete,
  afterWrite,
  fenceAcl,
  fenceDelete,
  fenceWrite,
  type FenceRow,
} from '../services/adapters/sinks/fence.ts';
import { chunkTableName, SINK_SCHEMA } from '../services/adapters/sinks/pgvector/naming.ts';
import { createPgvectorSink } from '../services/adapters/sinks/pgvector/sink.ts';
import type { IndexSpec, ItemResult, Sink } from '../services/adapters/sinks/types.ts';
import { uniqueId } from './support/ids.ts';
import {
  groupAtEnd,
  groupCaughtUp,
  insertDocuments,
  startPipeline,
  testSinkName,
  type TestPipeline,
} from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';
import { doc, runSuffix, uniqueIndexes, uniqueTenant } from './sinks/conformance.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');
const config = loadConfig();

// ---- 1. the fence through the Sink interface --------------------------------------------------

describe('pgvector fence: a write older than what the sink holds changes nothing', () => {
  const sinkName = `fence_${runSuffix()}`;
  const indexes = uniqueIndexes(8, 'fence');
  const [A, B] = indexes;
  let sink: Sink;
  let admin: pg.Pool;

  before(async () => {
    await ensureStack();
    admin = new pg.Pool({ connectionString: config.sink.pgvector.url, max: 2 });
    sink = createPgvectorSink(config, { overrides: { sinkName } });
    await sink.ensureIndex(A);
    await sink.ensureIndex(B);
  });
  after(async () => {
    await sink?.close();
    for (const index of indexes) {
      await admin.query(`DROP TABLE IF EXISTS ${SINK_SCHEMA}.${pg.escapeIdentifier(chunkTableName(index.modelKey))}`);
    }
    await admin.query(`DELETE FROM ${SINK_SCHEMA}.document_acl WHERE sink_name = $1`, [sinkName]);
    await admin.query(`DELETE FROM ${SINK_SCHEMA}.document_fence WHERE sink_name = $1`, [sinkName]);
    await admin.end();
  });

  const aclRow = async (tenant: string, document: string) =>
    (
      await admin.query<{ acl: string[]; acl_version: string }>(
        `SELECT acl, acl_version FROM ${SINK_SCHEMA}.document_acl WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3`,
        [sinkName, tenant, document],
      )
    ).rows[0];
  const fenced = (results: ItemResult[]) => results.map((r) => (r.ok ? (r.fenced ?? 'applied') : 'failed'));

  it('a late write, ACL or delete behind a delete or a re-creation changes nothing', async () => {
    const tenant = uniqueTenant('late');
    const acl = (principals: string[], aclVersion: number) => ({ principals, aclVersion });
    assert.deepEqual(
      fenced(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 1, acl: acl(['mallory'], 1) })])),
      ['applied'],
    );
    assert.deepEqual(
      fenced(await sink.deleteDocuments([A, B], [{ tenantId: tenant, documentId: 'd', version: 2, aclVersion: 2 }])),
      ['applied'],
    );
    // The write of version 1 again (it lost its ledger lock and arrives now), and the delete's own version.
    assert.deepEqual(
      fenced(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 1, acl: acl(['mallory'], 1) })])),
      ['tombstoned'],
    );
    assert.deepEqual(
      fenced(await sink.writeDocuments(B, [doc(B, tenant, 'd', { version: 2, acl: acl(['mallory'], 2) })])),
      ['tombstoned'],
    );
    assert.deepEqual(
      fenced(
        await sink.setAcls(
          [A],
          [{ tenantId: tenant, documentId: 'd', principals: ['mallory'], aclVersion: 2, chunkCount: 3 }],
        ),
      ),
      ['tombstoned'],
    );
    assert.deepEqual(await sink.inspect(A, tenant), []);
    assert.deepEqual(await sink.inspect(B, tenant), []);
    assert.equal(await aclRow(tenant, 'd'), undefined, 'no ACL row behind the tombstone');

    // Re-created above the tombstone: applies. Then the old delete arrives late: changes nothing.
    assert.deepEqual(
      fenced(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 3, acl: acl(['alice'], 4) })])),
      ['applied'],
    );
    assert.deepEqual(
      fenced(await sink.deleteDocuments([A], [{ tenantId: tenant, documentId: 'd', version: 2, aclVersion: 2 }])),
      ['stale'],
    );
    assert.deepEqual(
      fenced(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 2, acl: acl(['mallory'], 3) })])),
      ['stale'],
    );
    const stored = await sink.inspect(A, tenant, 'd');
    assert.deepEqual(
      [...new Set(stored.map((c) => `${c.document_version}/${c.acl.join(',')}/${c.acl_version}`))],
      ['3/alice/4'],
    );
    // A replay of the current version is applied (idempotent), not refused.
    assert.deepEqual(
      fenced(await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 3, acl: acl(['alice'], 4) })])),
      ['applied'],
    );
  });

  it('a delete that one model has seen overtaken keeps the document there, and its ACL', async () => {
    const tenant = uniqueTenant('models');
    await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 1 })]);
    await sink.writeDocuments(B, [doc(B, tenant, 'd', { version: 3 })]);
    const results = await sink.deleteDocuments(
      [A, B],
      [{ tenantId: tenant, documentId: 'd', version: 2, aclVersion: 1 }],
    );
    assert.deepEqual(fenced(results), ['stale']);
    assert.deepEqual(await sink.inspect(A, tenant), []);
    assert.equal((await sink.inspect(B, tenant)).length, 3);
    assert.ok(await aclRow(tenant, 'd'));
  });

  it('a delete sent to one model keeps the ACL row another model still serves a newer version with', async () => {
    // The propagator sends a delete only to the models whose ledger it is news to; a model that
    // already holds a re-created, newer version is left out of it.
    const tenant = uniqueTenant('subset');
    await sink.writeDocuments(A, [doc(A, tenant, 'd', { version: 1 })]);
    await sink.writeDocuments(B, [doc(B, tenant, 'd', { version: 3 })]);
    const results = await sink.deleteDocuments([A], [{ tenantId: tenant, documentId: 'd', version: 2, aclVersion: 1 }]);
    assert.deepEqual(fenced(results), ['applied']);
    assert.deepEqual(await sink.inspect(A, tenant), []);
    assert.equal((await sink.inspect(B, tenant)).length, 3);
    assert.ok(await aclRow(tenant, 'd'), 'the ACL row B searches with');
    // Once B deletes too, nothing is left.
    await sink.deleteDocuments([B], [{ tenantId: tenant, documentId: 'd', version: 4, aclVersion: 1 }]);
    assert.equal(await aclRow(tenant, 'd'), undefined);
  });

  it('decides exactly like the pure fence rule, for random sequences of writes, deletes and ACL changes', async () => {
    const opArb = fc.oneof(
      fc.record({
        op: fc.constant('write' as const),
        version: fc.integer({ min: 1, max: 5 }),
        aclVersion: fc.integer({ min: 1, max: 5 }),
        chunks: fc.integer({ min: 1, max: 3 }),
      }),
      fc.record({
        op: fc.constant('delete' as const),
        version: fc.integer({ min: 1, max: 5 }),
        aclVersion: fc.integer({ min: 0, max: 5 }),
      }),
      fc.record({ op: fc.constant('acl' as const), aclVersion: fc.integer({ min: 1, max: 5 }) }),
    );
    // One ACL per ACL version (the source guarantees it): the principal names the version.
    const principals = (v: number) => [`p${v}`];
    const tenant = uniqueTenant('model');
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 8 }), async (ops) => {
        const documentId = `d${run++}`;
        let fence: FenceRow | undefined;
        let acl: { aclVersion: number } | undefined;
        let chunks: { version: number; count: number } | undefined;
        for (const o of ops) {
          let expected: string;
          let results: ItemResult[];
          if (o.op === 'write') {
            const verdict = fenceWrite(fence, o.version);
            expected = verdict.apply ? 'applied' : verdict.reason;
            results = await sink.writeDocuments(A, [
              doc(A, tenant, documentId, {
                version: o.version,
                chunkCount: o.chunks,
                acl: { principals: principals(o.aclVersion), aclVersion: o.aclVersion },
              }),
            ]);
            if (verdict.apply) {
              fence = afterWrite(fence, o.version);
              chunks = { version: o.version, count: o.chunks };
              acl = { aclVersion: Math.max(acl?.aclVersion ?? 0, o.aclVersion) };
            }
          } else if (o.op === 'delete') {
            const verdict = fenceDelete(fence, o.version);
            expected = verdict.apply ? 'applied' : verdict.reason === 'tombstoned' ? 'stale' : verdict.reason;
            results = await sink.deleteDocuments(
              [A],
              [{ tenantId: tenant, documentId, version: o.version, aclVersion: o.aclVersion }],
            );
            if (verdict.apply) {
              fence = afterDelete(fence, o.version, o.aclVersion, acl?.aclVersion ?? 0);
              chunks = undefined;
              acl = undefined;
            }
          } else {
            const verdict = fenceAcl(fence ? [fence] : [], o.aclVersion);
            expected = verdict.apply ? 'applied' : verdict.reason;
            results = await sink.setAcls(
              [A],
              [
                {
                  tenantId: tenant,
                  documentId,
                  principals: principals(o.aclVersion),
                  aclVersion: o.aclVersion,
                  chunkCount: 3,
                },
              ],
            );
            if (verdict.apply) acl = { aclVersion: Math.max(acl?.aclVersion ?? 0, o.aclVersion) };
          }
          assert.deepEqual(fenced(results), [expected], `${JSON.stringify(o)} after ${JSON.stringify(fence)}`);
        }
        const stored = await sink.inspect(A, tenant, documentId);
        assert.equal(stored.length, chunks?.count ?? 0, 'chunks');
        for (const c of stored) assert.equal(c.document_version, chunks?.version);
        const row = await aclRow(tenant, documentId);
        assert.equal(row === undefined ? undefined : Number(row.acl_version), acl?.aclVersion, 'ACL row version');
        if (row) assert.deepEqual(row.acl, principals(Number(row.acl_version)));
      }),
      { numRuns: 25 },
    );
  });
});

// ---- 2. lost ledger locks in the real pipeline ------------------------------------------------

/** The local TCP ports of a process's sockets (Linux /proc), to find its database connections. */
function localPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) ports.add(Number.parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

describe('fenced sink writes: a writer that lost its ledger lock mid-write leaves nothing behind a delete', () => {
  const sinkName = testSinkName();
  const prefix = `test.fenced.${sinkName}`;
  const env: Record<string, string> = {
    VECSYNC_SINK_NAME: sinkName,
    VECSYNC_GROUP_PREFIX: prefix,
    VECSYNC_LOG_LEVEL: 'info',
    VECSYNC_METRICS_PORT: '0',
    VECSYNC_RETRY_INITIAL_MS: '100',
    VECSYNC_RETRY_MAX_MS: '1000',
  };
  const fn = `${SINK_SCHEMA}.${pg.escapeIdentifier(`test_sleep_${sinkName}`)}`;
  const trigger = pg.escapeIdentifier(`test_sleep_${sinkName}`);
  let p: TestPipeline;
  let sinkDb: pg.Pool;
  let table: string;
  let index: IndexSpec;
  let writer: { child: ChildProcess; log: string[] } | undefined;
  const tenants: string[] = [];

  function startWriter(): { child: ChildProcess; log: string[] } {
    const log: string[] = [];
    const child = spawn(process.execPath, [BIN, 'run', 'writer'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      log.push(d.toString('utf8'));
      if (log.length > 200) log.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return { child, log };
  }

  async function stopWriter(signal: NodeJS.Signals): Promise<void> {
    const w = writer;
    writer = undefined;
    if (!w || w.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      w.child.once('exit', () => resolve());
      w.child.kill(signal);
    });
  }

  /** Backends of this sink in the sink database: the writer sleeping mid-write, the propagator waiting for it. */
  async function sinkBackends(): Promise<
    { pid: number; wait: string | null; lock: boolean; state: string; port: number }[]
  > {
    return (
      await sinkDb.query<{ pid: number; wait: string | null; lock: boolean; state: string; port: number }>(
        `SELECT pid, wait_event AS wait, wait_event_type = 'Lock' AS lock, state, client_port AS port FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`,
        [`vecsync-sink-${sinkName}`],
      )
    ).rows;
  }

  before(async () => {
    p = await startPipeline('fenced', { services: ['embedder', 'propagator'], env });
    sinkDb = new pg.Pool({ connectionString: config.sink.pgvector.url, max: 2 });
    sinkDb.on('error', () => undefined);
    index = p.rt.activeIndex;
    table = `${SINK_SCHEMA}.${pg.escapeIdentifier(chunkTableName(index.modelKey))}`;
    await sinkDb.query(`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(TG_ARGV[0]::float8); RETURN NEW; END $$`);
    await groupAtEnd(p.config, p.rt.groupId('writer'), [p.rt.topics.chunks(index.modelKey)]);
    writer = startWriter();
    await waitFor(() => writer!.log.join('').includes('"msg":"running"'), {
      timeoutMs: 90_000,
      description: 'writer running',
    });
  });

  after(async () => {
    await stopWriter('SIGKILL');
    for (const tenant of tenants) {
      await p?.source
        .query(`DELETE FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2`, [sinkName, tenant])
        .catch(() => undefined);
    }
    await sinkDb
      ?.query(`DELETE FROM ${SINK_SCHEMA}.document_fence WHERE sink_name = $1`, [sinkName])
      .catch(() => undefined);
    await sinkDb?.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${table}`).catch(() => undefined);
    await sinkDb?.query(`DROP FUNCTION IF EXISTS ${fn}()`).catch(() => undefined);
    await sinkDb?.end();
    await p?.stop();
  });

  /** Inserts a document and waits until the writer's sink statement sleeps in the trigger. */
  async function insertAndCatchMidWrite(tenant: string, sleepSeconds: number): Promise<number> {
    tenants.push(tenant);
    // The trigger fires only for this sink and tenant: the rest of the shared table is untouched.
    await sinkDb.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${table}`);
    await sinkDb.query(
      `CREATE TRIGGER ${trigger} BEFORE INSERT ON ${table} FOR EACH ROW
       WHEN (NEW.sink_name = ${pg.escapeLiteral(sinkName)} AND NEW.tenant_id = ${pg.escapeLiteral(tenant)})
       EXECUTE FUNCTION ${fn}(${Number(sleepSeconds)})`,
    );
    await insertDocuments(p.source, [{ tenant, id: 'doc', body: 'a short body that makes one chunk', acl: ['alice'] }]);
    const sleeping = await waitFor(async () => (await sinkBackends()).find((b) => b.wait === 'PgSleep'), {
      timeoutMs: 60_000,
      description: 'the writer sleeping mid-write',
    });
    return sleeping.pid;
  }

  /** Hard-deletes with plain SQL; waits until the propagator's delete waits for the sleeping write, then for the tombstone. */
  async function hardDeleteDuringWrite(tenant: string, writerPid: number): Promise<void> {
    await p.source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'doc'`, [tenant]);
    // The race this test is about: the delete reaches the sink while the old write is still running.
    await waitFor(
      async () => {
        const mine = localPorts(process.pid);
        const backends = await sinkBackends();
        return (
          backends.some((b) => b.pid === writerPid && b.wait === 'PgSleep') &&
          // The propagator runs in this process: its sink connection waits for the write's lock.
          backends.some((b) => b.lock && mine.has(b.port))
        );
      },
      { timeoutMs: 30_000, intervalMs: 50, description: 'the delete waiting for the write in flight' },
    );
    await waitFor(
      async () => {
        const r = await p.source.query<{ tombstone: boolean }>(
          `SELECT tombstone FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'doc' AND model_key = $3`,
          [sinkName, tenant, index.modelKey],
        );
        return r.rows[0]?.tombstone === true;
      },
      { timeoutMs: 60_000, description: 'the tombstone in the ledger' },
    );
    // Until the old statement has finished, its commit could still come.
    await waitFor(async () => !(await sinkBackends()).some((b) => b.pid === writerPid && b.state === 'active'), {
      timeoutMs: 60_000,
      description: 'the old write finished',
    });
  }

  async function assertNothingLeft(tenant: string): Promise<void> {
    assert.deepEqual(await p.sink.inspect(index, tenant), [], 'ghost chunks in the sink');
    const acl = await sinkDb.query(
      `SELECT 1 FROM ${SINK_SCHEMA}.document_acl WHERE sink_name = $1 AND tenant_id = $2`,
      [sinkName, tenant],
    );
    assert.equal(acl.rowCount, 0, 'an ACL row behind the delete');
    const hits = await p.sink.search({
      modelKey: index.modelKey,
      tenantId: tenant,
      principal: 'alice',
      vector: new Float32Array(index.dimensions).fill(0.1),
      topK: 5,
    });
    assert.deepEqual(hits, []);
    const fence = await sinkDb.query<{ tombstone: boolean }>(
      `SELECT tombstone FROM ${SINK_SCHEMA}.document_fence WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'doc'`,
      [sinkName, tenant],
    );
    // One tombstone per live model (the propagator deletes from every one).
    assert.ok(fence.rows.length > 0 && fence.rows.every((r) => r.tombstone), JSON.stringify(fence.rows));
  }

  it('lock lost with the writer alive (its source connections terminated): the late write commits, then the delete removes it', async () => {
    const tenant = `tenant_${uniqueId('fence_alive')}`;
    // Long enough for the delete to travel Debezium and the priority lane while the write sleeps.
    const writerPid = await insertAndCatchMidWrite(tenant, 20);
    // The writer's ledger lock lives in its source transaction: end every source connection of the process.
    const ports = [...localPorts(writer!.child.pid!)];
    // Select first, terminate each one alone: in one statement the planner may call
    // pg_terminate_backend before the filters, on every backend of the cluster.
    const found = await p.source.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend' AND client_port = ANY($1::int[])
          AND application_name = 'vecsync-writer' AND pid <> pg_backend_pid()`,
      [ports],
    );
    const terminated = { rowCount: found.rows.length };
    for (const { pid } of found.rows) await p.source.query('SELECT pg_terminate_backend($1)', [pid]);
    // The lock is gone: no transaction of the writer is open any more.
    await waitFor(
      async () =>
        (
          await p.source.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND client_port = ANY($1::int[])
                AND state LIKE 'idle in transaction%'`,
            [[...localPorts(writer!.child.pid!)]],
          )
        ).rowCount === 0,
      { timeoutMs: 5000, description: "the writer's ledger transaction ended" },
    );
    assert.ok(terminated.rowCount! > 0, 'no source connection of the writer found');
    await hardDeleteDuringWrite(tenant, writerPid);
    await assertNothingLeft(tenant);
    // The writer lives on and retries its slice; the guard now skips it: still nothing.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await assertNothingLeft(tenant);
  });

  it('lock lost by SIGKILL of the writer mid-write: nothing is left in the sink', async () => {
    const tenant = `tenant_${uniqueId('fence_kill')}`;
    const writerPid = await insertAndCatchMidWrite(tenant, 20);
    await stopWriter('SIGKILL');
    await hardDeleteDuringWrite(tenant, writerPid);
    await assertNothingLeft(tenant);
    // The killed writer never committed its slice: the next writer of the group gets the old write
    // again, now after the delete, and it must not bring the document back.
    writer = startWriter();
    await waitFor(() => writer!.log.join('').includes('"msg":"running"'), {
      timeoutMs: 90_000,
      description: 'the next writer running',
    });
    await waitFor(() => groupCaughtUp(p.config, p.rt.groupId('writer'), [p.rt.topics.chunks(index.modelKey)]), {
      timeoutMs: 90_000,
      description: 'the next writer past the redelivered slice',
    });
    await assertNothingLeft(tenant);
  });
});
