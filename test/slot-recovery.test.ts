/**
 * Recovery from an invalidated replication slot, end to end, with two sinks fed from the same
 * topics. Everything is this test's own: a PostgreSQL cluster with `max_slot_wal_keep_size=1MB`
 * (the limit is server-wide, so the shared stack's slots are never at risk), a topic prefix (so its
 * own connector on the shared Kafka Connect, slot and topics), two sink names with their consumer
 * groups, and a tenant. The connector, its topics and groups are removed afterwards.
 *
 * The story: documents reach both sinks; change capture stops (the connector is stopped, as when
 * Connect is down); inserts, updates, an ACL revoke, a hard delete and an archive are committed,
 * then WAL is written past the limit until PostgreSQL invalidates the slot (`wal_status=lost`), so
 * those changes never reach Kafka. `vecsync status` must flag it, naming the recovery. Connect comes
 * back (the connector is resumed), and the recovery of docs/runbook.md runs with the CLI; it ends
 * when a reconcile of each sink reports zero drift and both sinks match the source.
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
import { connectorName, slotName } from '../services/ops/connect/render.ts';
import { collectStatus, formatStatus } from '../services/ops/status/index.ts';
import { reconcile, reconcilerDeps, type ReconcileReport } from '../services/pipeline/reconciler/index.ts';
import { uniqueId } from './support/ids.ts';
import { withAdmin } from './support/kafka.ts';
import { insertDocuments, startPipeline, updateDocument, type TestPipeline } from './support/pipeline.ts';
import { startPrivatePostgres, writeWalUntilLost, type PrivatePostgres } from './support/private-postgres.ts';
import { ensureStack, type StackEndpoints } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const id = uniqueId('slotrec');
const tenant = `tenant_${id}`;
const connector = connectorName(id);
const slot = slotName(id);

/** What the source holds for one document of the tenant: the sinks must end up with exactly this. */
interface Expected {
  version: number;
  acl: string[];
}

describe('recovery from an invalidated replication slot, two sinks', { timeout: 6 * 60_000 }, () => {
  let stack: StackEndpoints;
  let cluster: PrivatePostgres | undefined;
  let source: pg.Client;
  let connect: ConnectClient;
  const sinks: TestPipeline[] = [];
  /** The product's configuration for this test's source and topics (the CLI gets the same). */
  let env: Record<string, string> = {};

  /** `vecsync <args>` as an operator runs it, for one sink when given; stdout. */
  async function vecsync(args: string[], sink?: TestPipeline): Promise<string> {
    // As the runbook has it: the sink name is all that tells the sinks' reconciles apart.
    const sinkEnv = sink ? { VECSYNC_SINK_NAME: sink.config.sink.name } : {};
    try {
      const { stdout } = await run(process.execPath, [path.join(root, 'bin', 'vecsync.mjs'), ...args], {
        cwd: root,
        env: { ...process.env, ...env, ...sinkEnv },
        timeout: 180_000,
      });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(`vecsync ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: error });
    }
  }

  before(async () => {
    stack = await ensureStack();
    connect = new ConnectClient(stack.connectUrl);
    cluster = await startPrivatePostgres(56000);
    env = {
      VECSYNC_SOURCE_URL: cluster.url,
      VECSYNC_TOPIC_PREFIX: id,
      VECSYNC_EMBEDDER: 'hashing',
      VECSYNC_LOG_LEVEL: 'warn',
      VECSYNC_METRICS_PORT: '0',
    };
    // The sink database is the shared pgvector one, already migrated by the stack's set-up; the
    // source migration registers the configured (hashing) model in this cluster's registry.
    await vecsync(['migrate', '--only', 'source']);
    await vecsync(['connectors', 'apply', '--partitions', '3']);
    for (const label of ['slotrec_a', 'slotrec_b']) sinks.push(await startPipeline(label, { env }));
    source = new pg.Client({ connectionString: cluster.url });
    await source.connect();
  });

  after(async () => {
    await Promise.allSettled(sinks.map((p) => p.stop()));
    await source?.end().catch(() => undefined);
    if (stack) {
      await connect.delete(connector).catch(() => undefined);
      await withAdmin(stack.kafkaBrokers, async (admin) => {
        const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${id}.`) || t.endsWith(`.${id}`));
        if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
        const groups = (await admin.listGroups()).groups
          .map((g) => g.groupId)
          .filter((g) => g.startsWith('test.slotrec_'));
        const mine = groups.filter((g) => sinks.some((p) => g.startsWith(p.config.groupPrefix)));
        if (mine.length > 0) await admin.deleteGroups(mine).catch(() => undefined);
      }).catch(() => undefined);
    }
    // The slot dies with the cluster; the connector was deleted first so it does not reconnect.
    await cluster?.stop();
  });

  /** Every document of the tenant that should be searchable, with its version and ACL. */
  async function expected(): Promise<Map<string, Expected>> {
    const { rows } = await source.query<{ document_id: string; version: string; acl: string[] }>(
      `SELECT d.document_id, d.version,
              coalesce(array_agg(a.principal ORDER BY a.principal) FILTER (WHERE a.principal IS NOT NULL), '{}') AS acl
         FROM vecsync.documents d
         LEFT JOIN vecsync.document_acl a USING (tenant_id, document_id)
        WHERE d.tenant_id = $1 AND d.status = 'active'
        GROUP BY d.document_id, d.version`,
      [tenant],
    );
    return new Map(rows.map((r) => [r.document_id, { version: Number(r.version), acl: r.acl }]));
  }

  /** What a sink holds, per document: the versions and ACLs of its chunks (one each when consistent). */
  async function held(p: TestPipeline): Promise<Map<string, Expected>> {
    const chunks = await p.sink.inspect(p.rt.activeIndex, tenant);
    const out = new Map<string, Expected>();
    for (const c of chunks) {
      const seen = out.get(c.document_id);
      const mine = { version: c.document_version, acl: [...c.acl].sort() };
      if (seen && JSON.stringify(seen) !== JSON.stringify(mine)) {
        throw new Error(`${c.document_id}: chunks disagree in sink ${p.config.sink.name}`);
      }
      out.set(c.document_id, mine);
    }
    return out;
  }

  async function sinkMatchesSource(p: TestPipeline): Promise<boolean> {
    const [want, have] = await Promise.all([expected(), held(p)]);
    return JSON.stringify([...want].sort()) === JSON.stringify([...have].sort());
  }

  function driftOf(report: ReconcileReport): number {
    return (
      Object.values(report.drift).reduce((a, b) => a + b, 0) +
      report.state_topic.missing +
      report.state_topic.extra +
      report.state_topic.stale
    );
  }

  test('change capture stops, the slot is invalidated, status flags it; the runbook recovery reaches zero drift on both sinks', async () => {
    // 1. Documents reach both sinks through the real change capture.
    const docs = Array.from({ length: 8 }, (_, i) => ({
      tenant,
      id: `doc-${i}`,
      body: `document ${i} about replication slots and write-ahead log retention, part ${i}. `.repeat(4 + i),
      acl: ['group:eng', `user:u${i}`],
    }));
    await insertDocuments(sinks[0]!.source, docs);
    await updateDocument(sinks[0]!.source, tenant, 'doc-0', `body = body || ' revised'`);
    for (const p of sinks) {
      await waitFor(() => sinkMatchesSource(p), {
        timeoutMs: 90_000,
        description: `sink ${p.config.sink.name} to match the source before the outage`,
      });
    }

    // 2. Change capture stops: the task shuts down and releases the slot.
    await connect.stop(connector);
    await waitFor(
      async () => {
        const { rows } = await source.query<{ active: boolean }>(
          'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
          [slot],
        );
        return rows[0]?.active === false;
      },
      { timeoutMs: 60_000, description: `slot ${slot} to become inactive` },
    );

    // 3. Changes that only the source will know of: inserts, updates, a revoke, a hard delete, an archive.
    await insertDocuments(sinks[0]!.source, [
      { tenant, id: 'new-1', body: 'written while change capture was stopped. '.repeat(6), acl: ['group:eng'] },
      { tenant, id: 'new-2', body: 'also written during the outage. '.repeat(9), acl: ['user:late'] },
    ]);
    await updateDocument(sinks[0]!.source, tenant, 'doc-1', `body = 'first rewrite during the outage. ' || body`);
    const doc1Version = await updateDocument(
      sinks[0]!.source,
      tenant,
      'doc-1',
      `body = 'second rewrite. ' || body, title = 'retitled'`,
    );
    await updateDocument(sinks[0]!.source, tenant, 'doc-2', `title = 'only the title changed'`);
    await source.query(
      `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = 'doc-4' AND principal = 'user:u4'`,
      [tenant],
    );
    await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'doc-5'`, [tenant]);
    await updateDocument(sinks[0]!.source, tenant, 'doc-6', `status = 'archived'`);

    // 4. WAL past max_slot_wal_keep_size: PostgreSQL invalidates the slot.
    assert.equal(await writeWalUntilLost(source, slot), 'lost');
    const config = loadConfig({ ...process.env, ...env });
    const status = await collectStatus(config);
    assert.equal(status.replication_slots.find((s) => s.slot_name === slot)?.wal_status, 'lost');
    const error = status.errors.find((e) => e.includes(`replication slot ${slot} is lost`));
    assert.ok(error, JSON.stringify(status.errors));
    assert.match(error, /vecsync connectors apply/);
    assert.match(error, /reconcile --repair/);
    for (const p of sinks) assert.ok(error.includes(p.config.sink.name), `${error} names sink ${p.config.sink.name}`);
    assert.match(formatStatus(status), new RegExp(`error: replication slot ${slot} is lost`));

    // 5. Connect comes back (the connector is resumed, as a restarted worker restarts it). This
    // alone recovers nothing: Debezium waits for the lost slot to become valid again ("Cannot obtain
    // valid replication slot", every 2 s for half an hour) and the slot stays lost. The wait is a
    // fixed one because what is checked is that nothing happens.
    await connect.resume(connector);
    await waitFor(async () => (await connect.getStatus(connector))?.connector.state === 'RUNNING', {
      timeoutMs: 30_000,
      description: `connector ${connector} to run again`,
    });
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const stuck = await connect.getStatus(connector);
    console.log(
      `# connector after Connect came back: ${stuck?.connector.state}, tasks ${JSON.stringify(stuck?.tasks.map((t) => t.state))}`,
    );
    const { rows: slotRows } = await source.query<{ wal_status: string }>(
      'SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    assert.equal(slotRows[0]?.wal_status, 'lost');
    for (const p of sinks) {
      const have = await held(p);
      assert.ok(
        !have.has('new-1') && have.has('doc-5'),
        `sink ${p.config.sink.name} got outage changes without recovery`,
      );
    }

    // 6. The recovery of docs/runbook.md (VecsyncReplicationSlotInvalid), timed: connectors apply,
    // then a repair per sink, then zero drift on both. Settle 0: in this test the changes are seconds
    // old, and the default window (60 s) would leave them "in flight", neither judged nor repaired.
    const started = Date.now();
    const applied = JSON.parse(await vecsync(['connectors', 'apply', '--partitions', '3', '--json'])) as {
      slot_dropped: boolean;
      recovered: string | null;
      status: { state: string; tasks: { state: string }[] };
    };
    const appliedAt = Date.now();
    assert.equal(applied.slot_dropped, true, JSON.stringify(applied));
    assert.deepEqual(
      applied.status.tasks.map((t) => t.state),
      ['RUNNING'],
    );
    const repairs: string[] = [];
    for (const p of sinks) {
      const report = JSON.parse(
        await vecsync(['reconcile', '--repair', '--json', '--tenant', tenant, '--settle-ms', '0'], p),
      ) as ReconcileReport;
      repairs.push(
        `${p.config.sink.name}: drift ${JSON.stringify(report.drift)}, enqueued ${JSON.stringify(report.repair)}`,
      );
    }
    for (const p of sinks) {
      const deps = await reconcilerDeps(p.rt, p.sink);
      await waitFor(async () => driftOf(await reconcile(deps, { tenants: [tenant], settleMs: 0 })) === 0, {
        timeoutMs: 120_000,
        intervalMs: 1000,
        description: `zero drift in sink ${p.config.sink.name}`,
      });
    }
    const done = Date.now();
    console.log(
      `# recovery: ${((done - started) / 1000).toFixed(1)} s from connectors apply to zero drift on both sinks ` +
        `(apply ${((appliedAt - started) / 1000).toFixed(1)} s, recovered: ${applied.recovered ?? 'none needed'})`,
    );
    for (const line of repairs) console.log(`# repair ${line}`);

    // 7. Zero drift, as the operator checks it, and both sinks hold exactly what the source says.
    for (const p of sinks) {
      const report = JSON.parse(
        await vecsync(['reconcile', '--json', '--tenant', tenant, '--settle-ms', '0'], p),
      ) as ReconcileReport;
      assert.deepEqual(
        report.drift,
        { missing: 0, ghost: 0, stale: 0, acl_mismatch: 0, orphan_chunks: 0, count_mismatch: 0 },
        p.config.sink.name,
      );
      const have = await held(p);
      const want = await expected();
      assert.deepEqual([...have].sort(), [...want].sort());
      assert.equal(have.get('doc-1')?.version, doc1Version, 'the twice-updated document is at its last version');
      assert.ok(!have.has('doc-5'), 'the hard-deleted document is gone');
      assert.ok(!have.has('doc-6'), 'the archived document is gone');
      assert.deepEqual(have.get('doc-4')?.acl, ['group:eng'], 'the revoked principal is gone');
      assert.ok(have.has('new-1') && have.has('new-2'), 'documents inserted during the outage arrived');
    }
  });
});
