/**
 * Upgrade from the previous release (fixtures/release-af837ed: its migrations and a pg_dump of the
 * schema and reference data its `vecsync migrate` left) with events in flight: documents written
 * under the old schema wait in the outbox and in Kafka, then the current `vecsync migrate` runs
 * while the connector keeps capturing, then the current services start and more changes arrive.
 * It ends when `vecsync reconcile --json` reports zero drift.
 *
 * Everything is this test's own: two databases, a topic and group prefix, a connector and its
 * replication slot (all removed afterwards). What it cannot do: run the previous release's
 * services (the code at that commit is identical to today's, and no image of it exists).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { uniqueId } from '../support/ids.ts';
import { withAdmin } from '../support/kafka.ts';
import { ensureStack, type StackEndpoints } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { startVecsync, vecsync, type Running } from './support/cli.ts';
import { REPO_ROOT } from './support/manifests.ts';

const FIXTURE = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'release-af837ed');
interface Release {
  commit: string;
  migrations: Record<'source' | 'sink', { name: string; sha256: string }[]>;
}
const release = JSON.parse(readFileSync(path.join(FIXTURE, 'release.json'), 'utf8')) as Release;

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('upgrade from the previous release', { timeout: 600_000 }, () => {
  it('released migrations are unchanged; new ones only come after them', () => {
    for (const role of ['source', 'sink'] as const) {
      const dir = path.join(REPO_ROOT, 'migrations', role);
      const current = readdirSync(dir).sort();
      const released = release.migrations[role];
      assert.ok(released.length > 0);
      assert.deepEqual(
        current.slice(0, released.length),
        released.map((m) => m.name),
        `${role}: a released migration was renamed or removed, or a new one sorts before it`,
      );
      for (const m of released) assert.equal(sha256(path.join(dir, m.name)), m.sha256, `${role}/${m.name} was edited`);
    }
  });

  const id = uniqueId('upgrade');
  const tenant = `tenant_${id}`;
  let stack: StackEndpoints;
  let env: Record<string, string> = {};
  const urls = { source: '', sink: '', admin: '' };
  let services: Running | undefined;

  before(async () => {
    stack = await ensureStack();
    const at = (db: string) => Object.assign(new URL(stack.sourceUrl), { pathname: `/${db}` }).toString();
    urls.source = at(`${id}_src`);
    urls.sink = at(`${id}_vec`);
    urls.admin = at('postgres');
    env = {
      VECSYNC_SOURCE_URL: urls.source,
      VECSYNC_PGVECTOR_URL: urls.sink,
      VECSYNC_TOPIC_PREFIX: id,
      VECSYNC_GROUP_PREFIX: id,
      // The previous release's model. The default embedder is minilm since then; an upgrade keeps
      // the model it runs, and a model change is a re-embed (docs/deploy.md).
      VECSYNC_EMBEDDER: 'hashing',
      VECSYNC_METRICS_PORT: '0',
      VECSYNC_RECONCILE_SETTLE_MS: '0',
      VECSYNC_RECONCILE_INTERVAL_MS: '3600000',
    };
  });

  after(async () => {
    await services?.stop();
    if (!stack) return;
    // The connector first, then its slot (once inactive), the databases, topics and groups.
    await fetch(`${stack.connectUrl}/connectors/${id}-outbox`, { method: 'DELETE' }).catch(() => undefined);
    const admin = new pg.Client({ connectionString: urls.admin });
    await admin.connect();
    try {
      await waitFor(
        async () => {
          const r = await admin.query(
            `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1 AND active`,
            [`${id}_outbox`],
          );
          return r.rows[0].n === 0;
        },
        { timeoutMs: 60_000, description: 'the test slot to become inactive' },
      ).catch(() => undefined);
      await admin.query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
        [`${id}_outbox`],
      );
      for (const db of [`${id}_src`, `${id}_vec`])
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    await withAdmin(stack.kafkaBrokers, async (kafka) => {
      const topics = (await kafka.listTopics()).filter((t) => t.startsWith(`${id}.`) || t.endsWith(`.${id}`));
      if (topics.length > 0) await kafka.deleteTopics({ topics }).catch(() => undefined);
      const groups = (await kafka.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${id}.`));
      if (groups.length > 0) await kafka.deleteGroups(groups).catch(() => undefined);
    });
  });

  it('previous schema and data, events in flight, current migrations and services: zero drift', async () => {
    // 1. The previous release's databases, restored from the fixture.
    const admin = new pg.Client({ connectionString: urls.admin });
    await admin.connect();
    for (const db of [`${id}_src`, `${id}_vec`]) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(db)}`);
    await admin.end();
    for (const [url, file] of [
      [urls.source, 'source.sql'],
      [urls.sink, 'sink.sql'],
    ] as const) {
      const r = spawnSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', path.join(FIXTURE, file)], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `restore ${file}: ${r.stderr}`);
    }
    const source = new pg.Pool({ connectionString: urls.source, max: 2 });
    try {
      const released = await source.query<{ name: string }>('SELECT name FROM vecsync.pgmigrations ORDER BY id');
      assert.deepEqual(
        released.rows.map((r) => `${r.name}.sql`),
        release.migrations.source.map((m) => m.name),
      );

      // 2. Writes under the old schema: queued in the outbox, no connector yet.
      const write = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          await source.query(
            `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, metadata)
             VALUES ($1, $2, $3, $4, '{"category":"upgrade"}')
             ON CONFLICT (tenant_id, document_id) DO UPDATE SET body = EXCLUDED.body`,
            [tenant, `doc-${i}`, `Document ${i}`, `Body of document ${i}, written at step ${from}.`],
          );
          await source.query(
            `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) VALUES ($1, $2, 'group:all')
             ON CONFLICT DO NOTHING`,
            [tenant, `doc-${i}`],
          );
        }
      };
      await write(0, 30);

      // 3. The connector captures them (snapshot of queued rows) into this test's topics.
      const apply = vecsync(['connectors', 'apply', '--json'], env);
      assert.equal(apply.code, 0, apply.stderr);

      // 4. More changes while the connector runs and nothing consumes: in flight in Kafka.
      await write(20, 45);
      await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'doc-3'`, [tenant]);
      await source.query(
        `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = 'doc-4'`,
        [tenant],
      );

      // 5. The upgrade: the current migrations, exactly those the release did not have.
      const migrate = vecsync(['migrate', '--json'], env);
      assert.equal(migrate.code, 0, migrate.stderr);
      const report = JSON.parse(migrate.stdout) as { source: { applied: string[] }; sink: { applied: string[] } };
      for (const role of ['source', 'sink'] as const) {
        const expected = readdirSync(path.join(REPO_ROOT, 'migrations', role))
          .sort()
          .slice(release.migrations[role].length)
          .map((f) => f.replace(/\.sql$/, ''));
        assert.deepEqual(report[role].applied, expected, `${role} migrations applied by the upgrade`);
      }

      // 6. The current services, and changes that arrive while they start.
      services = startVecsync(['run', 'all'], env);
      await write(40, 50);
      await source.query(
        `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = 'doc-5' AND principal = 'group:all'`,
        [tenant],
      );
      await source.query(
        `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) VALUES ($1, 'doc-5', 'user:ann')`,
        [tenant],
      );

      // 7. Zero drift, with every active document in the sink.
      let last = '';
      const drift = await waitFor(
        () => {
          if (/"level":60/.test(services!.stderr()))
            throw new Error(`services failed: ${services!.stderr().slice(-2000)}`);
          const r = vecsync(['reconcile', '--json', '--tenant', tenant], env);
          last = r.stdout || r.stderr;
          if (r.code !== 0) return undefined;
          const d = (JSON.parse(r.stdout) as { drift: Record<string, number> }).drift;
          return Object.values(d).every((n) => n === 0) ? d : undefined;
        },
        { timeoutMs: 240_000, intervalMs: 3_000, description: 'zero drift after the upgrade' },
      ).catch((error: unknown) => {
        throw new Error(
          `${(error as Error).message}\nlast reconcile: ${last}\nservices: ${services!.stderr().slice(-3000)}`,
        );
      });
      assert.ok(Object.keys(drift).length >= 6, JSON.stringify(drift));
      const inspect = vecsync(['inspect', 'vectors', '--tenant', tenant, '--json'], env);
      assert.equal(inspect.code, 0, inspect.stderr);
      const chunks = JSON.parse(inspect.stdout) as { document_id: string; acl: string[] }[];
      const docs = new Set(chunks.map((c) => c.document_id));
      assert.equal(docs.size, 48, 'documents 0-49 but the deleted doc-3 and the archived doc-4');
      assert.ok(!docs.has('doc-3') && !docs.has('doc-4'));
      assert.deepEqual(chunks.find((c) => c.document_id === 'doc-5')?.acl, ['user:ann']);
      const queued = await source.query(
        `SELECT count(*)::int AS n FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 AND status <> 'processed'`,
        [tenant],
      );
      assert.equal(queued.rows[0].n, 0, 'outbox rows left unprocessed');
    } finally {
      await source.end();
    }
  });
});
