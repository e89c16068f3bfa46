import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PipelineStatus } from '../status/index.ts';
import { renderStatusPage } from './render.ts';

const status: PipelineStatus = {
  components: { postgres: { state: 'up', port: 55432, pid: 10, version: '15' } },
  consumer_groups: [{ group: 'g', topic: 't', lag: 7, partitions: 6 }],
  outbox: {
    priority: { queued: 1, failed: 2, oldest_unapplied_age_seconds: 3.25 },
    live: { queued: 11, failed: 12, oldest_unapplied_age_seconds: 0 },
  },
  dlq: { writer: 4 },
  outbox_failed_by_reason: {},
  paused: [],
  replication_slots: [
    {
      slot_name: 'vecsync_outbox',
      active: false,
      retained_wal_bytes: 2048,
      wal_status: 'reserved',
      safe_wal_size_bytes: null,
    },
  ],
  vector_status: [
    {
      sink_name: 's',
      model_key: 'm.v1',
      tenant_id: '<script>alert(1)</script>',
      documents: 5,
      last_applied_at: '2026-01-01T00:00:00.000Z',
      oldest_unapplied_age_seconds: 1.5,
      unapplied_events: 2,
      last_analyze_at: null,
      last_index_build_at: null,
      index_rows_changed_since_build: 9,
      documents_changed_since_build: 3,
      maintenance_queued: 1,
      maintenance_running: 0,
      last_reconcile_at: null,
      drift_documents: 1,
      drift_pct: 20,
      model_state: 'active',
      backfill_state: 'running',
      backfill_done: 3,
      backfill_total: 10,
      reembed_state: null,
    },
  ],
  maintenance: { queued: 1, running: 0, failed: 0, last_done_at: null },
  errors: [],
};

function fields(html: string): Map<string, string> {
  return new Map([...html.matchAll(/data-field="([^"]+)" data-value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

function at(obj: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

test('every figure carries the value at its JSON path', () => {
  const shown = fields(renderStatusPage(status));
  assert.ok(shown.size >= 25, `figures: ${shown.size}`);
  for (const [field, value] of shown) {
    const json = at(status, field);
    assert.equal(value, json === null || json === undefined ? '' : String(json), field);
  }
  for (const f of [
    'outbox.live.queued',
    'dlq.writer',
    'replication_slots.0.active',
    'vector_status.0.drift_pct',
    'maintenance.queued',
  ])
    assert.ok(shown.has(f), f);
});

test('untrusted text is escaped and an inactive slot turns the banner red', () => {
  const html = renderStatusPage(status, { refreshSeconds: 0 });
  assert.ok(!html.includes('<script>alert(1)</script>'));
  assert.ok(!html.includes('http-equiv="refresh"'));
  assert.match(html, /id="overall" class="banner bad"/);
  const embedded = /<script type="application\/json" id="status-data">(.*)<\/script>/.exec(html)![1]!;
  assert.deepEqual(JSON.parse(embedded), status);
  const healthy = renderStatusPage({
    ...status,
    replication_slots: [{ ...status.replication_slots[0]!, active: true }],
  });
  assert.match(healthy, /id="overall" class="banner ok"/);
});
