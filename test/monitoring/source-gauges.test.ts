/**
 * The source-side gauges against the real source database, and the broker-measured group lag
 * against the real Kafka. The outbox rows are written inside a transaction that is rolled back, so
 * no other pipeline sharing the stack can see (and process) them while the gauges are read.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import client from 'prom-client';
import { loadConfig } from '../../services/config/index.ts';
import { registerGroupLagGauge } from '../../services/adapters/telemetry/group-lag.ts';
import { registerSourceGauges } from '../../services/adapters/telemetry/source-gauges.ts';
import { uniqueId } from '../support/ids.ts';
import { kafkaClient } from '../support/kafka.ts';
import { ensureStack } from '../support/stack.ts';

const config = loadConfig();
let pool: pg.Pool;

before(async () => {
  await ensureStack();
  pool = new pg.Pool({ connectionString: config.sourceUrl, max: 2 });
});
after(async () => {
  await pool?.end();
});

type Json = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;
function value(json: Json, name: string, labels: Record<string, string>): number | undefined {
  const metric = json.find((m) => m.name === name);
  const v = (metric?.values ?? []).find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value;
}

test('outbox gauges count queued and failed rows per lane and operation, and age the oldest queued', async () => {
  const tenant = `tenant_${uniqueId('gauges')}`;
  const registry = new client.Registry();
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const row = `INSERT INTO vecsync.vector_sync_outbox
        (event_key, tenant_id, document_id, operation, lane, embedding_model, embedding_version,
         document_version, acl_version, payload, status, created_at)
      VALUES ($1 || ':' || $2, $1, $2, $3, $4, $5, $6, 1, 1, '{}', $7, now() - make_interval(secs => $8))`;
    await c.query(row, [tenant, 'a', 'upsert', 'live', 'm', 1, 'queued', 42]);
    await c.query(row, [tenant, 'b', 'upsert', 'live', 'm', 1, 'queued', 0]);
    await c.query(row, [tenant, 'c', 'upsert', 'live', 'm', 1, 'failed', 900]);
    await c.query(row, [tenant, 'd', 'upsert', 'live', 'm', 1, 'processed', 3600]);
    await c.query(row, [tenant, 'e', 'delete', 'priority', null, null, 'queued', 10]);
    const gauges = registerSourceGauges(c, { registry, tenantPrefix: tenant });
    const json = await registry.getMetricsAsJSON();
    assert.equal(value(json, 'vecsync_outbox_queued', { lane: 'live', operation: 'upsert' }), 2);
    assert.equal(value(json, 'vecsync_outbox_failed', { lane: 'live', operation: 'upsert' }), 1);
    assert.equal(value(json, 'vecsync_outbox_queued', { lane: 'priority', operation: 'delete' }), 1);
    // The processed row (an hour old) and the failed one (15 min) do not age the queue.
    assert.equal(value(json, 'vecsync_outbox_oldest_queued_age_seconds', { lane: 'live', operation: 'upsert' }), 42);
    assert.equal(
      value(json, 'vecsync_outbox_oldest_queued_age_seconds', { lane: 'priority', operation: 'delete' }),
      10,
    );
    // Nothing queued reads 0, not absent.
    assert.equal(value(json, 'vecsync_outbox_queued', { lane: 'bulk', operation: 'upsert' }), 0);
    assert.equal(value(json, 'vecsync_outbox_oldest_queued_age_seconds', { lane: 'bulk', operation: 'upsert' }), 0);

    // Applied: the writer marks the rows processed and the backlog reads 0.
    await c.query(
      `UPDATE vecsync.vector_sync_outbox SET status = 'processed' WHERE tenant_id = $1 AND status = 'queued'`,
      [tenant],
    );
    await gauges.refresh();
    const drained = await registry.getMetricsAsJSON();
    assert.equal(value(drained, 'vecsync_outbox_queued', { lane: 'live', operation: 'upsert' }), 0);
    assert.equal(value(drained, 'vecsync_outbox_oldest_queued_age_seconds', { lane: 'live', operation: 'upsert' }), 0);
    gauges.unregister();
    assert.equal((await registry.getMetricsAsJSON()).length, 0);
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    c.release();
  }
});

test('replication slot gauges report the Debezium slot, its retained WAL and that it is valid', async () => {
  const registry = new client.Registry();
  const gauges = registerSourceGauges(pool, { registry });
  try {
    const slots = await pool.query<{ slot_name: string; wal_status: string }>(
      'SELECT slot_name, wal_status FROM pg_replication_slots',
    );
    assert.ok(slots.rows.length > 0, 'the stack has no replication slot (connectors not applied?)');
    const json = await registry.getMetricsAsJSON();
    for (const s of slots.rows) {
      const retained = value(json, 'vecsync_replication_slot_retained_wal_bytes', { slot: s.slot_name });
      assert.ok(retained !== undefined && retained >= 0, `${s.slot_name}: retained ${retained}`);
      assert.equal(value(json, 'vecsync_replication_slot_invalid', { slot: s.slot_name, wal_status: s.wal_status }), 0);
    }
  } finally {
    gauges.unregister();
  }
});

test('a source that cannot be read leaves the gauges absent and counts the error', async () => {
  const registry = new client.Registry();
  const broken = { query: () => Promise.reject(new Error('connection refused')) } as unknown as pg.Pool;
  registerSourceGauges(broken, { registry });
  const json = await registry.getMetricsAsJSON();
  assert.equal(json.find((m) => m.name === 'vecsync_outbox_queued')?.values.length, 0);
  assert.ok((value(json, 'vecsync_source_gauge_errors_total', {}) ?? 0) >= 1);
});

test('group lag: committed offsets against high watermarks, for the groups under the prefix only', async () => {
  const kafka = kafkaClient(config.kafkaBrokers, 'vecsync-test-group-lag');
  const admin = kafka.admin();
  const producer = kafka.producer();
  await admin.connect();
  await producer.connect();
  const id = uniqueId('grouplag');
  const topic = `test.${id}`;
  const prefix = `test.${id}`;
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] });
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `m${i}` })),
    });
    // The writer group committed 3 of 5 on partition 0 and all 5 on partition 1.
    await admin.setOffsets({
      groupId: `${prefix}.writer`,
      topic,
      partitions: [
        { partition: 0, offset: '3' },
        { partition: 1, offset: '5' },
      ],
    });
    await admin.setOffsets({ groupId: `other.${id}.writer`, topic, partitions: [{ partition: 0, offset: '0' }] });
    const registry = new client.Registry();
    const gauge = registerGroupLagGauge(admin, { groupPrefix: prefix, registry });
    const json = await registry.getMetricsAsJSON();
    assert.equal(value(json, 'vecsync_consumer_group_lag', { group: `${prefix}.writer`, topic }), 2);
    assert.equal(value(json, 'vecsync_consumer_group_committed_offset', { group: `${prefix}.writer`, topic }), 8);
    assert.equal(
      json
        .find((m) => m.name === 'vecsync_consumer_group_lag')
        ?.values.filter((v) => v.labels.group === `other.${id}.writer`).length,
      0,
    );
    // Progress: the group commits the rest and the lag reads 0 at the next scrape.
    await admin.setOffsets({ groupId: `${prefix}.writer`, topic, partitions: [{ partition: 0, offset: '5' }] });
    const positions = await gauge.read();
    assert.deepEqual(positions, [{ group: `${prefix}.writer`, topic, lag: 0, committed: 10 }]);
  } finally {
    await admin.deleteGroups([`${prefix}.writer`, `other.${id}.writer`]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await producer.disconnect();
    await admin.disconnect();
  }
});
