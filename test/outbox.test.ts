/**
 * The outbox end to end on the real stack: triggers in PostgreSQL, Debezium with the outbox
 * router, Kafka. Every test writes documents of its own tenant and reads topics with consumer
 * groups of its own, so the tests are independent of each other and of other suites.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type Config } from '../services/config/index.ts';
import { applyConnectors } from '../services/ops/connect/apply.ts';
import { renderConnectorFromConfig, slotName } from '../services/ops/connect/render.ts';
import { createPool, type Pool } from '../services/adapters/postgres/pool.ts';
import { migrate } from '../services/ops/migrate/index.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { testIds, uniqueId } from './support/ids.ts';
import {
  assertKafkaReachable,
  consumeUntil,
  headerOf,
  keyOf,
  readToEnd,
  topicsWithPrefix,
  type RawMessage,
} from './support/kafka.ts';
import { waitFor } from './support/wait.ts';

const config: Config = loadConfig({ ...process.env, VECSYNC_EMBEDDER: 'hashing' });
const topics = topicsFor(config.topicPrefix);
const brokers = config.kafkaBrokers;
let pool: Pool;

type Json = Record<string, unknown>;

function decode(m: RawMessage): Json {
  assert.ok(m.value, `message ${m.topic}/${m.partition}@${m.offset} has no value`);
  return JSON.parse(m.value.toString('utf8')) as Json;
}

function contentHash(title: string, body: string): string {
  return createHash('sha256').update(`${title}\n${body}`, 'utf8').digest('hex');
}

/** Messages whose key belongs to `tenant`, consumed from the beginning until `until` holds. */
function tenantMessages(
  tenant: string,
  topicList: string[],
  until: (ms: RawMessage[]) => boolean,
  timeoutMs = 30_000,
): Promise<RawMessage[]> {
  return consumeUntil({
    brokers,
    topics: topicList,
    keep: (m) => keyOf(m)?.startsWith(`${tenant}:`) ?? false,
    until,
    timeoutMs,
  });
}

const byKey = (key: string) => (m: RawMessage) => keyOf(m) === key;

async function insertDocument(
  tenant: string,
  documentId: string,
  fields: { title?: string; body?: string; metadata?: Json; restricted?: Json; status?: string } = {},
): Promise<void> {
  await pool.query(
    `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status, metadata, restricted)
     VALUES ($1, $2, $3, $4, 'en', $5, $6, $7)`,
    [
      tenant,
      documentId,
      fields.title ?? `title of ${documentId}`,
      fields.body ?? `body of ${documentId}`,
      fields.status ?? 'active',
      JSON.stringify(fields.metadata ?? {}),
      fields.restricted === undefined ? null : JSON.stringify(fields.restricted),
    ],
  );
}

async function documentVersions(tenant: string, documentId: string): Promise<{ version: number; acl_version: number }> {
  const { rows } = await pool.query<{ version: string; acl_version: string }>(
    'SELECT version, acl_version FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2',
    [tenant, documentId],
  );
  assert.ok(rows[0], `document ${tenant}:${documentId} not found`);
  return { version: Number(rows[0].version), acl_version: Number(rows[0].acl_version) };
}

before(async () => {
  // A missing stack is a failure, never a skip.
  await waitFor(
    async () => {
      const probe = createPool(config.sourceUrl, { max: 1 });
      try {
        await probe.query('SELECT 1');
        return true;
      } finally {
        await probe.end();
      }
    },
    { timeoutMs: 15_000, description: `PostgreSQL at ${config.sourceUrl}` },
  );
  await assertKafkaReachable(brokers);
  await waitFor(async () => (await fetch(`${config.connectUrl}/connector-plugins`)).ok, {
    timeoutMs: 15_000,
    description: `Kafka Connect at ${config.connectUrl}`,
  });
  // Both are no-ops when `npm test`'s pretest already ran them.
  await migrate(config);
  await applyConnectors(config, { timeoutMs: 90_000 });
  pool = createPool(config.sourceUrl, { max: 4, applicationName: 'vecsync-test-outbox' });
});

after(async () => {
  await pool?.end();
});

describe('outbox → Debezium → Kafka', { timeout: 120_000 }, () => {
  test('an inserted document reaches the live lane keyed tenant:document with a version-1 upsert', async () => {
    const { tenant } = testIds('insert');
    const key = `${tenant}:doc-1`;
    // The ACL is written before the document exists; the document's first event carries it.
    await pool.query(`INSERT INTO vecsync.document_acl VALUES ($1, 'doc-1', 'bob'), ($1, 'doc-1', 'alice')`, [tenant]);
    await insertDocument(tenant, 'doc-1', {
      title: 'Quarterly report',
      body: 'Revenue went up.',
      metadata: { category: 'finance', tags: ['q3', 2024], internal_owner: 'carol' },
    });

    const [message] = await tenantMessages(tenant, [topics.lane('live')], (ms) => ms.some(byKey(key)));
    assert.ok(message);
    assert.equal(keyOf(message), key);
    const payload = decode(message);
    assert.deepEqual(
      { ...payload, created_at: undefined },
      {
        op: 'upsert',
        tenant_id: tenant,
        document_id: 'doc-1',
        version: 1,
        acl_version: 1,
        acl: ['alice', 'bob'],
        title: 'Quarterly report',
        body: 'Revenue went up.',
        language: 'en',
        status: 'active',
        metadata: { category: 'finance', tags: ['q3', 2024] },
        content_hash: contentHash('Quarterly report', 'Revenue went up.'),
        model: { name: config.embedder.model, version: config.embedder.version },
        created_at: undefined,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(String(payload.created_at))), 'created_at is a timestamp');

    const { rows } = await pool.query<{ id: string; payload: Json }>(
      `SELECT id::text, payload FROM vecsync.vector_sync_outbox
        WHERE tenant_id = $1 AND embedding_model = $2 AND embedding_version = $3`,
      [tenant, config.embedder.model, config.embedder.version],
    );
    assert.equal(rows.length, 1);
    // The Kafka value is the outbox payload, unchanged.
    assert.deepEqual(payload, rows[0]!.payload);
    assert.equal(headerOf(message, 'outbox_id'), rows[0]!.id);
    assert.equal(headerOf(message, 'lane'), 'live');
    assert.ok(headerOf(message, 'created_at'));
  });

  test('ACL grant and revoke, soft deletes and a hard delete reach the priority lane with the right op and versions', async () => {
    const { tenant } = testIds('priority');
    for (const id of ['acl', 'deleted', 'archived', 'gone']) await insertDocument(tenant, id);

    // Two principals in one statement: one acl_version bump, one event.
    await pool.query(`INSERT INTO vecsync.document_acl VALUES ($1, 'acl', 'p1'), ($1, 'acl', 'p2')`, [tenant]);
    await pool.query(`DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND principal = 'p1'`, [tenant]);
    await pool.query(
      `UPDATE vecsync.documents SET status = 'deleted' WHERE tenant_id = $1 AND document_id = 'deleted'`,
      [tenant],
    );
    await pool.query(
      `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = 'archived'`,
      [tenant],
    );
    await pool.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'gone'`, [tenant]);

    const messages = await tenantMessages(tenant, [topics.lane('priority')], (ms) => ms.length >= 5);
    const payloads = messages.map(decode);
    const strip = (p: Json) => {
      const { created_at, ...rest } = p;
      assert.ok(typeof created_at === 'string');
      return rest;
    };
    const of = (id: string) => payloads.filter((p) => p.document_id === id).map(strip);
    for (const m of messages) assert.equal(headerOf(m, 'lane'), 'priority');

    assert.deepEqual(of('acl'), [
      { op: 'acl', tenant_id: tenant, document_id: 'acl', version: 1, acl_version: 2, acl: ['p1', 'p2'] },
      { op: 'acl', tenant_id: tenant, document_id: 'acl', version: 1, acl_version: 3, acl: ['p2'] },
    ]);
    assert.deepEqual(of('deleted'), [
      { op: 'delete', tenant_id: tenant, document_id: 'deleted', version: 2, acl_version: 1, reason: 'deleted' },
    ]);
    assert.deepEqual(of('archived'), [
      { op: 'delete', tenant_id: tenant, document_id: 'archived', version: 2, acl_version: 1, reason: 'archived' },
    ]);
    assert.deepEqual(of('gone'), [
      { op: 'delete', tenant_id: tenant, document_id: 'gone', version: 2, acl_version: 2, reason: 'hard_delete' },
    ]);
    assert.equal(messages.length, 5, 'no other priority events for this tenant');
  });

  test('the compacted state topic holds the latest state of each document', async () => {
    const { tenant } = testIds('state');
    for (const id of ['edited', 'shared', 'archived', 'deleted', 'plain']) await insertDocument(tenant, id);
    await pool.query(
      `UPDATE vecsync.documents SET title = 'new title' WHERE tenant_id = $1 AND document_id = 'edited'`,
      [tenant],
    );
    await pool.query(`INSERT INTO vecsync.document_acl VALUES ($1, 'shared', 'team-a'), ($1, 'shared', 'team-b')`, [
      tenant,
    ]);
    await pool.query(
      `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = 'archived'`,
      [tenant],
    );
    await pool.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'deleted'`, [tenant]);

    const { rows: live } = await pool.query<{ document_id: string; state: Json }>(
      `SELECT d.document_id, vecsync.state_payload(d) AS state FROM vecsync.documents d WHERE d.tenant_id = $1`,
      [tenant],
    );
    const { rows: tombstones } = await pool.query<{ document_id: string; version: string; acl_version: string }>(
      'SELECT document_id, version, acl_version FROM vecsync.document_tombstones WHERE tenant_id = $1',
      [tenant],
    );
    assert.equal(live.length, 4);
    assert.equal(tombstones.length, 1);
    const expected = new Map<string, Json>(live.map((r) => [`${tenant}:${r.document_id}`, r.state]));
    for (const t of tombstones) {
      expected.set(`${tenant}:${t.document_id}`, {
        tenant_id: tenant,
        document_id: t.document_id,
        version: Number(t.version),
        acl_version: Number(t.acl_version),
        status: 'deleted',
        acl: [],
        content_hash: null,
        deleted: true,
      });
    }

    const latest = (ms: RawMessage[]) => {
      const last = new Map<string, Json>();
      for (const m of ms) last.set(keyOf(m)!, decode(m));
      return last;
    };
    const comparable = (s: Json | undefined) => (s && s.deleted === true ? { ...s, updated_at: undefined } : s);
    const matches = (ms: RawMessage[]) => {
      const last = latest(ms);
      return [...expected].every(([k, v]) => {
        try {
          assert.deepEqual(comparable(last.get(k)), comparable(v));
          return true;
        } catch {
          return false;
        }
      });
    };
    const messages = await tenantMessages(tenant, [topics.state], matches);
    const last = latest(messages);
    assert.equal(last.size, expected.size);
    for (const [k, v] of expected) assert.deepEqual(comparable(last.get(k)), comparable(v), k);
    assert.deepEqual(last.get(`${tenant}:shared`)?.acl, ['team-a', 'team-b']);
    assert.equal(last.get(`${tenant}:edited`)?.version, 2);
  });

  test('restricted fields and non-allowlisted metadata never reach any topic', async () => {
    const { tenant } = testIds('canary');
    const canary = uniqueId('canary');
    assert.ok(!config.metadataAllowlist.includes('private_note'));
    await insertDocument(tenant, 'secret-doc', {
      metadata: { category: 'hr', private_note: canary },
      restricted: { ssn: canary },
    });
    const before = await documentVersions(tenant, 'secret-doc');
    const outboxRows = async () =>
      Number(
        (await pool.query('SELECT count(*) FROM vecsync.vector_sync_outbox WHERE tenant_id = $1', [tenant])).rows[0]
          .count,
      );
    const rowsBefore = await outboxRows();

    // A change of `restricted` alone bumps no version and emits nothing.
    await pool.query(
      `UPDATE vecsync.documents SET restricted = jsonb_build_object('ssn', $2::text, 'again', $2::text)
        WHERE tenant_id = $1 AND document_id = 'secret-doc'`,
      [tenant, canary],
    );
    assert.deepEqual(await documentVersions(tenant, 'secret-doc'), before);
    assert.equal(await outboxRows(), rowsBefore);

    // Every other kind of event for the document, each of which could leak.
    await pool.query(`INSERT INTO vecsync.document_acl VALUES ($1, 'secret-doc', 'hr-team')`, [tenant]);
    await pool.query(
      `UPDATE vecsync.documents SET title = 'renamed', metadata = metadata || jsonb_build_object('more', $2::text)
        WHERE tenant_id = $1 AND document_id = 'secret-doc'`,
      [tenant, canary],
    );
    await pool.query(
      `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = 'secret-doc'`,
      [tenant],
    );
    await pool.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'secret-doc'`, [tenant]);

    // Wait until the last of them (the hard delete, version 4) is in Kafka, then scan everything.
    await tenantMessages(tenant, [topics.lane('priority')], (ms) => ms.some((m) => decode(m).reason === 'hard_delete'));
    await tenantMessages(tenant, [topics.state], (ms) => ms.some((m) => decode(m).deleted === true));
    const all = [
      ...(await topicsWithPrefix(brokers, `${config.topicPrefix}.`)),
      topicsFor(config.topicPrefix).heartbeat,
    ];
    assert.ok(all.includes(topics.lane('live')) && all.includes(topics.state));
    const messages = await readToEnd({ brokers, topics: all, timeoutMs: 60_000 });
    const ours = messages.filter((m) => keyOf(m)?.startsWith(`${tenant}:`));
    assert.ok(ours.length >= 7, `expected this tenant's events in the scan, found ${ours.length}`);
    const needle = Buffer.from(canary, 'utf8');
    for (const m of messages) {
      const where = `${m.topic}/${m.partition}@${m.offset}`;
      assert.ok(!m.key?.includes(needle), `canary in the key of ${where}`);
      assert.ok(!m.value?.includes(needle), `canary in the value of ${where}`);
      for (const [name, value] of Object.entries(m.headers)) {
        assert.ok(!value?.includes(needle), `canary in header ${name} of ${where}`);
      }
    }
    // And none in what the outbox holds either.
    const leaked = await pool.query(
      `SELECT (SELECT count(*) FROM vecsync.vector_sync_outbox WHERE strpos(payload::text, $1) > 0)
            + (SELECT count(*) FROM vecsync.state_outbox WHERE strpos(payload::text, $1) > 0) AS n`,
      [canary],
    );
    assert.equal(Number(leaked.rows[0].n), 0);
  });

  test('status write-back and pruning of the outbox tables produce no events', async () => {
    const { tenant } = testIds('writeback');
    const key = `${tenant}:doc`;
    await insertDocument(tenant, 'doc');
    await tenantMessages(tenant, [topics.lane('live'), topics.state], (ms) => ms.filter(byKey(key)).length >= 2);

    await pool.query(
      `UPDATE vecsync.vector_sync_outbox SET status = 'processed', processed_at = now(), attempts = attempts + 1
        WHERE tenant_id = $1`,
      [tenant],
    );
    await pool.query(
      `UPDATE vecsync.vector_sync_outbox SET status = 'failed', error = 'sink unavailable', attempts = attempts + 1
        WHERE tenant_id = $1`,
      [tenant],
    );
    await pool.query(`DELETE FROM vecsync.state_outbox WHERE event_key = $1`, [key]);
    await pool.query(`DELETE FROM vecsync.vector_sync_outbox WHERE tenant_id = $1`, [tenant]);
    // A later change of the same document lands on the same partitions, after anything the
    // write-back could have produced.
    await pool.query(`UPDATE vecsync.documents SET body = 'second' WHERE tenant_id = $1 AND document_id = 'doc'`, [
      tenant,
    ]);

    const lanes = [topics.lane('priority'), topics.lane('live'), topics.lane('bulk'), topics.state];
    const messages = await tenantMessages(
      tenant,
      lanes,
      (ms) =>
        ms
          .filter((m) => m.topic === topics.lane('live') || m.topic === topics.state)
          .filter((m) => decode(m).version === 2).length >= 2,
    );
    const summary = messages.map((m) => `${m.topic}:${decode(m).version}`).sort();
    assert.deepEqual(
      summary,
      [`${topics.lane('live')}:1`, `${topics.lane('live')}:2`, `${topics.state}:1`, `${topics.state}:2`].sort(),
    );
    // Nothing leaked past the router onto Debezium's raw table topics either.
    const raw = (await topicsWithPrefix(brokers, `${config.topicPrefix}.vecsync.`)).filter(
      (t) => !t.endsWith('heartbeat'),
    );
    if (raw.length > 0) {
      const rawMessages = await readToEnd({ brokers, topics: raw });
      assert.equal(rawMessages.filter((m) => m.value?.includes(Buffer.from(tenant))).length, 0);
    }
  });

  test('a re-inserted hard-deleted document continues above its tombstone version', async () => {
    const { tenant } = testIds('reinsert');
    const key = `${tenant}:doc`;
    await insertDocument(tenant, 'doc');
    await pool.query(`UPDATE vecsync.documents SET title = 'v2' WHERE tenant_id = $1 AND document_id = 'doc'`, [
      tenant,
    ]);
    await pool.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'doc'`, [tenant]);
    const tombstone = await pool.query<{ version: string; acl_version: string }>(
      'SELECT version, acl_version FROM vecsync.document_tombstones WHERE tenant_id = $1',
      [tenant],
    );
    assert.equal(Number(tombstone.rows[0]?.version), 3);
    await insertDocument(tenant, 'doc', { title: 'back again' });
    const now = await documentVersions(tenant, 'doc');
    assert.equal(now.version, 4);
    assert.ok(now.acl_version > Number(tombstone.rows[0]!.acl_version));

    const messages = await tenantMessages(
      tenant,
      [topics.lane('live'), topics.lane('priority')],
      (ms) => ms.some((m) => decode(m).version === 4) && ms.some((m) => decode(m).op === 'delete'),
    );
    const versions = messages.filter(byKey(key)).map((m) => [decode(m).op, decode(m).version]);
    assert.deepEqual(
      versions.filter(([op]) => op === 'upsert'),
      [
        ['upsert', 1],
        ['upsert', 2],
        ['upsert', 4],
      ],
    );
    assert.deepEqual(
      versions.filter(([op]) => op === 'delete'),
      [['delete', 3]],
    );
  });

  test("the replication slot's confirmed_flush_lsn advances on an idle database within the heartbeat interval", async () => {
    const connector = await renderConnectorFromConfig(config);
    const heartbeatMs = Number(connector.config['heartbeat.interval.ms']);
    assert.ok(heartbeatMs > 0 && heartbeatMs <= 15_000, `heartbeat.interval.ms=${heartbeatMs}`);
    const slot = slotName(config.topicPrefix);
    // WAL written elsewhere on the server (the sink database): nothing the slot's publication
    // captures, so only the heartbeat lets the slot confirm past it.
    const sink = createPool(config.sink.pgvector.url, { max: 1 });
    let target: string;
    try {
      const table = `vecsync_test_wal_${uniqueId('hb')}`;
      await sink.query(`CREATE TEMP TABLE ${table} AS SELECT g FROM generate_series(1, 1000) g`);
      target = (await sink.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    } finally {
      await sink.end();
    }
    const started = Date.now();
    // Heartbeat interval, plus Connect's offset flush and the slot status update.
    await waitFor(
      async () => {
        const { rows } = await pool.query<{ ahead: boolean }>(
          `SELECT confirmed_flush_lsn >= $2::pg_lsn AS ahead FROM pg_replication_slots WHERE slot_name = $1`,
          [slot, target],
        );
        return rows[0]?.ahead === true;
      },
      { timeoutMs: heartbeatMs + 10_000, intervalMs: 250, description: `slot ${slot} to confirm ${target}` },
    );
    assert.ok(Date.now() - started <= heartbeatMs + 10_000);
  });
});
