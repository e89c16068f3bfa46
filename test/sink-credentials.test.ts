/**
 * Credentials refused by the sink, for 20 s, while documents keep arriving through plain SQL
 * (the real triggers, Debezium and Kafka) and the priority lane carries an ACL grant and a delete:
 *
 * - Pinecone (the local contract server): the index servers rotate their API key, so every request
 *   of the sink is answered 401.
 * - pgvector: the sink connects as a role of this test alone, which is altered to NOLOGIN and whose
 *   backends are terminated, so every new connection fails with 28000 (the stack's pg_hba is
 *   `trust`: passwords do not matter there, NOLOGIN does).
 *
 * The writer and the propagator pause: they retry with backoff, dead-letter nothing, and show
 * `vecsync_service_paused{service="writer"|"propagator",reason="<sink>_unauthorized"} 1` and a row
 * each in `vecsync status`. Once the credentials work again every document, the grant and the
 * delete are applied, and the pause clears.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { metrics } from '../services/adapters/telemetry/metrics.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import { uniqueId } from './support/ids.ts';
import { startPineconeServer, type PineconeIndexServer } from './support/pinecone-server.ts';
import {
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  type PipelineService,
  type TestPipeline,
} from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const OUTAGE_MS = 20_000;
/** Backoff up to 2 s (the policy is the same as in production, only shorter). */
const FAST_RETRY = { VECSYNC_RETRY_MAX_MS: '2000' };
const SERVICES = ['writer', 'propagator'] as const;
/**
 * How long the backlog may take to drain once the credentials work again. A few seconds alone;
 * the embedder of this process shares the live lane with every other test (some send documents of
 * many megabytes), so on a loaded machine it takes longer.
 */
const DRAIN_MS = 120_000;

interface Outage {
  refuse(): Promise<void>;
  restore(): Promise<void>;
  /** Requests the sink saw refused, when it can tell. */
  refusedRequests?(): number;
}

async function pausedGauge(service: string, reason: string): Promise<number | undefined> {
  return (await metrics.servicePaused.get()).values.find(
    (v) => v.labels.service === service && v.labels.reason === reason,
  )?.value;
}

/** Dead outcomes of the tenant's messages, per service (every committed slice is recorded). */
function deadLetters(p: TestPipeline, tenant: string): string[] {
  const out: string[] = [];
  for (const service of ['embedder', 'writer', 'propagator'] as PipelineService[]) {
    for (const { message, outcome } of p.committed[service]) {
      if (outcome.kind === 'dead' && message.key?.startsWith(`${tenant}:`)) out.push(`${service} ${message.key}`);
    }
  }
  return out;
}

async function ledgerRow(p: TestPipeline, tenant: string, id: string) {
  const res = await p.source.query<{ version: string; acl_version: string; tombstone: boolean }>(
    `SELECT version, acl_version, tombstone FROM vecsync.sync_state
      WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3 AND model_key = $4`,
    [p.config.sink.name, tenant, id, p.rt.activeIndex.modelKey],
  );
  const r = res.rows[0];
  return r && { version: Number(r.version), aclVersion: Number(r.acl_version), tombstone: r.tombstone };
}

/**
 * The scenario both sinks share: two documents applied, then the outage, during which an ACL grant
 * (d0), a delete (d1) and a batch of new documents every 3 s arrive; then the credentials work
 * again and everything must be applied, with nothing dead-lettered.
 */
async function refusedCredentials(p: TestPipeline, dependency: 'pinecone' | 'pgvector', outage: Outage) {
  const tenant = `tenant_${uniqueId(`sinkcreds_${dependency}`)}`;
  const reason = `${dependency}_unauthorized`;
  const doc = (i: number) => ({
    tenant,
    id: `d${i}`,
    body: `Sink credentials ${dependency} ${tenant} document ${i}. `.repeat(20),
    acl: ['g'],
  });
  const first = await insertDocuments(p.source, [doc(0), doc(1)]);
  for (const [id, version] of first) await waitForVersion(p, tenant, id, version, DRAIN_MS);

  await outage.refuse();
  const outageStart = Date.now();
  await p.source.query(`INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) VALUES ($1, 'd0', 'h')`, [
    tenant,
  ]);
  const deletedAt = await updateDocument(p.source, tenant, 'd1', `status = 'deleted'`);

  const versions = new Map<string, number>();
  let next = 2;
  const pausedSeen = new Set<string>();
  const statusSeen = new Set<string>();
  while (Date.now() < outageStart + OUTAGE_MS - 3_000) {
    const batch = Array.from({ length: 3 }, (_, k) => doc(next + k));
    next += batch.length;
    for (const [id, version] of await insertDocuments(p.source, batch)) versions.set(id, version);
    await new Promise((r) => setTimeout(r, 3_000));
    for (const service of SERVICES) if ((await pausedGauge(service, reason)) === 1) pausedSeen.add(service);
    if (statusSeen.size < SERVICES.length) {
      for (const row of (await collectStatus(p.config)).paused) {
        if (row.sink_name === p.config.sink.name && row.dependency === dependency && row.reason === 'unauthorized') {
          statusSeen.add(row.service);
        }
      }
    }
  }
  // Nothing of the outage reached the ledger.
  assert.equal((await ledgerRow(p, tenant, 'd1'))?.tombstone, false, 'the delete waited for the sink');
  for (const id of versions.keys()) assert.equal((await ledgerRow(p, tenant, id))?.version ?? 0, 0, `${id} waited`);
  assert.deepEqual([...pausedSeen].sort(), [...SERVICES].sort(), `vecsync_service_paused{reason="${reason}"} was 1`);
  assert.deepEqual([...statusSeen].sort(), [...SERVICES].sort(), 'vecsync status showed both pauses');
  assert.deepEqual(deadLetters(p, tenant), [], 'nothing was dead-lettered during the outage');
  const refused = outage.refusedRequests?.();
  if (refused !== undefined) assert.ok(refused > 0 && refused < 500, `backoff, not a tight loop: ${refused} refused`);

  await outage.restore();
  const restoredAt = Date.now();
  const { rows } = await p.source.query<{ acl_version: string }>(
    `SELECT acl_version FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'd0'`,
    [tenant],
  );
  const granted = Number(rows[0]!.acl_version);
  await waitFor(async () => ((await ledgerRow(p, tenant, 'd0'))?.aclVersion ?? 0) >= granted, {
    timeoutMs: DRAIN_MS,
    description: 'the ACL grant applied after the credentials work again',
  });
  const d1 = await waitForVersion(p, tenant, 'd1', deletedAt, DRAIN_MS);
  assert.equal(d1.tombstone, true, 'the delete was applied');
  for (const [id, version] of versions) await waitForVersion(p, tenant, id, version, DRAIN_MS);
  const drained = (Date.now() - restoredAt) / 1000;

  // The sink itself holds what the ledger says (Pinecone shows writes after a delay).
  const live = new Set(['d0', ...versions.keys()]);
  await waitFor(
    async () => {
      const chunks = await p.sink.inspect(p.rt.activeIndex, tenant);
      const docs = new Set(chunks.map((c) => c.document_id));
      const d0 = chunks.filter((c) => c.document_id === 'd0');
      return (
        docs.size === live.size &&
        [...live].every((id) => docs.has(id)) &&
        d0.length > 0 &&
        d0.every((c) => [...c.acl].sort().join(',') === 'g,h')
      );
    },
    { timeoutMs: 30_000, description: 'the sink holds every live document, the grant, and not the deleted one' },
  );
  assert.deepEqual(deadLetters(p, tenant), [], 'nothing was dead-lettered');
  for (const service of SERVICES) {
    await waitFor(async () => (await pausedGauge(service, reason)) === 0, {
      timeoutMs: 10_000,
      description: `the ${service} pause gauge cleared`,
    });
  }
  await waitFor(
    async () =>
      (await collectStatus(p.config)).paused.every((x) => x.sink_name !== p.config.sink.name) ? true : undefined,
    { timeoutMs: 10_000, description: 'the status pause rows cleared' },
  );
  process.stdout.write(
    `# ${dependency}: ${versions.size} documents, a grant and a delete during ${OUTAGE_MS / 1000} s of refused ` +
      `credentials${refused !== undefined ? ` (${refused} refused requests)` : ''}; all applied ${drained.toFixed(1)} s after\n`,
  );
}

async function clearPauses(p: TestPipeline | undefined): Promise<void> {
  await p?.source
    .query('DELETE FROM vecsync.service_pauses WHERE sink_name = $1', [p.config.sink.name])
    .catch(() => undefined);
}

describe('the Pinecone sink refuses the API key', { timeout: 4 * 60_000 }, () => {
  const KEY = 'test';
  const servers: PineconeIndexServer[] = [];
  let p: TestPipeline;

  before(async () => {
    const config = loadConfig({ ...process.env, VECSYNC_EMBEDDER: 'hashing' });
    await ensureStack(config);
    // Every live model needs an index of its own (host mode; the propagator writes to all of them).
    const source = new pg.Pool({ connectionString: config.sourceUrl, max: 1 });
    const models = await source
      .query<{ name: string; version: number; dimensions: number }>(
        `SELECT name, version, dimensions FROM vecsync.embedding_models WHERE state <> 'retired'`,
      )
      .finally(() => source.end());
    const active = modelKey(config.embedder.model, config.embedder.version);
    const main = await startPineconeServer({ dimension: config.embedder.dimensions, apiKey: KEY });
    servers.push(main);
    const hosts = [main.host];
    for (const m of models.rows) {
      const key = modelKey(m.name, m.version);
      if (key === active) continue;
      const other = await startPineconeServer({ dimension: m.dimensions, apiKey: KEY });
      servers.push(other);
      hosts.push(`${key}=${other.host}`);
    }
    p = await startPipeline('sinkcreds-pinecone', {
      env: { VECSYNC_SINK: 'pinecone', PINECONE_API_KEY: KEY, VECSYNC_PINECONE_HOST: hosts.join(','), ...FAST_RETRY },
    });
    assert.equal(p.sink.type, 'pinecone');
  });

  after(async () => {
    await clearPauses(p);
    await p?.stop();
    await Promise.all(servers.map((s) => s.close()));
  });

  test('401 for 20 s pauses the writer and the propagator; nothing is dead-lettered; all applied after', async () => {
    let since = 0;
    await refusedCredentials(p, 'pinecone', {
      async refuse() {
        since = Date.now();
        // A rotated key: the sink still sends the old one.
        for (const s of servers) s.apiKey = `rotated-${randomBytes(4).toString('hex')}`;
      },
      async restore() {
        for (const s of servers) s.apiKey = KEY;
      },
      refusedRequests: () =>
        servers.reduce((n, s) => n + s.requests.filter((r) => r.status === 401 && r.at >= since).length, 0),
    });
  });
});

describe('the pgvector sink refuses the role', { timeout: 4 * 60_000 }, () => {
  const role = `vecsync_t_${randomBytes(5).toString('hex')}`;
  let admin: pg.Pool;
  let p: TestPipeline;

  const terminate = () =>
    admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`,
      [role],
    );

  before(async () => {
    const config = loadConfig({ ...process.env, VECSYNC_EMBEDDER: 'hashing' });
    await ensureStack(config);
    admin = new pg.Pool({ connectionString: config.sink.pgvector.url, max: 2 });
    // SUPERUSER: the sink creates and alters its tables (owned by the stack's role); what this test
    // takes away is LOGIN, which a superuser needs as well.
    await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER`);
    const url = new URL(config.sink.pgvector.url);
    url.username = role;
    url.password = '';
    p = await startPipeline('sinkcreds-pgvector', {
      env: { VECSYNC_SINK: 'pgvector', VECSYNC_PGVECTOR_URL: url.href, ...FAST_RETRY },
    });
    assert.equal(p.sink.type, 'pgvector');
  });

  after(async () => {
    await clearPauses(p);
    await p?.stop();
    if (admin) {
      await admin.query(`ALTER ROLE ${role} LOGIN`).catch(() => undefined);
      await terminate().catch(() => undefined);
      // Tables the sink created as this role (a live model's first table) stay, owned by the stack's role.
      await admin.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`).catch(() => undefined);
      await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  test('NOLOGIN for 20 s pauses the writer and the propagator; nothing is dead-lettered; all applied after', async () => {
    await refusedCredentials(p, 'pgvector', {
      async refuse() {
        await admin.query(`ALTER ROLE ${role} NOLOGIN`);
        await terminate();
        // A new connection of the role is refused with 28000 (checked here, so the test means what it says).
        const probe = new pg.Client({ connectionString: p.config.sink.pgvector.url });
        await assert.rejects(probe.connect(), (e: unknown) => (e as { code?: string }).code === '28000');
      },
      async restore() {
        await admin.query(`ALTER ROLE ${role} LOGIN`);
      },
    });
  });
});
