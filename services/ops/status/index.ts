/**
 * `vecsync status`: one view of the pipeline for operators and scripts. Every figure is read from
 * its source of truth at call time: the stack's processes, Kafka's group offsets, the outbox and
 * the replication slot in PostgreSQL.
 */
import pg from 'pg';
import { stackSettings, type Config } from '../../config/index.ts';
import { describeError } from '../../domain/errors.ts';
import { createLogger } from '../../adapters/telemetry/log.ts';
import { createKafka } from '../../adapters/kafka/client.ts';
import { LANES, SERVICES, topicsFor } from '../../adapters/kafka/topics.ts';
import { stackStatus } from '../../stack/stack.ts';

export interface GroupLag {
  group: string;
  topic: string;
  lag: number;
  partitions: number;
}

export interface PipelineStatus {
  components: Record<string, { state: string; port: number; pid: number | null; version: string }>;
  consumer_groups: GroupLag[];
  /** Per lane: queued outbox rows and the age of the oldest (seconds), from the outbox created_at. */
  outbox: Record<string, { queued: number; failed: number; oldest_unapplied_age_seconds: number }>;
  dlq: Record<string, number>;
  /** Failed outbox rows by reason (the text before the first `:` of `error`), e.g. body_too_large. */
  outbox_failed_by_reason: Record<string, number>;
  replication_slots: ReplicationSlotStatus[];
  /** Services paused because a dependency refused their credentials (401/403), per sink. */
  paused: { sink_name: string; service: string; dependency: string; reason: string; since: string }[];
  /** Rows of `vecsync.vector_status` for this sink (VECSYNC_SINK_NAME); empty before migration 0010. */
  vector_status: VectorStatusRow[];
  /** pgvector maintenance backlog of this sink (`vecsync.maintenance_jobs`). */
  maintenance: { queued: number; running: number; failed: number; last_done_at: string | null };
  errors: string[];
}

export interface ReplicationSlotStatus {
  slot_name: string;
  active: boolean;
  retained_wal_bytes: number;
  /**
   * PostgreSQL's `wal_status`: reserved / extended (healthy), unreserved (WAL will be removed at
   * the next checkpoint), lost (invalidated: the slot can no longer stream).
   */
  wal_status: string | null;
  /** Bytes of WAL the slot may still fall behind before it is invalidated (null: no limit). */
  safe_wal_size_bytes: number | null;
}

/** The error for a slot that is lost or about to be, naming the recovery steps. */
export function slotProblem(slot: ReplicationSlotStatus, sinkNames: string[] = []): string | undefined {
  if (slot.wal_status === 'lost') {
    const sinks = sinkNames.length ? sinkNames.join(', ') : '<each sink name>';
    return (
      `replication slot ${slot.slot_name} is lost (wal_status=lost: WAL it needed was removed; changes made ` +
      `meanwhile were not captured). Recover: 1) vecsync connectors apply (drops the lost slot and brings the ` +
      `connector back; Debezium creates a new slot and re-snapshots the queued outbox rows); ` +
      `2) for every sink fed from these topics (${sinks}): ` +
      `VECSYNC_SINK_NAME=<sink> vecsync reconcile --repair, which re-enqueues what that sink misses; ` +
      `3) vecsync reconcile --json shows zero drift per sink once lag is 0.`
    );
  }
  if (slot.wal_status === 'unreserved') {
    return `replication slot ${slot.slot_name} is unreserved: it retains more WAL than max_slot_wal_keep_size and will be invalidated at the next checkpoint unless its consumer catches up`;
  }
  return undefined;
}

export interface VectorStatusRow {
  sink_name: string;
  model_key: string;
  tenant_id: string;
  documents: number;
  last_applied_at: string | null;
  oldest_unapplied_age_seconds: number;
  unapplied_events: number;
  last_analyze_at: string | null;
  last_index_build_at: string | null;
  index_rows_changed_since_build: number | null;
  documents_changed_since_build: number;
  maintenance_queued: number;
  maintenance_running: number;
  last_reconcile_at: string | null;
  drift_documents: number | null;
  drift_pct: number | null;
  model_state: string | null;
  backfill_state: string | null;
  backfill_done: number | null;
  backfill_total: number | null;
  reembed_state: string | null;
}

/** Rows of `vector_status` the text view prints. */
const VECTOR_STATUS_LINES = 10;

export async function collectStatus(config: Config): Promise<PipelineStatus> {
  const status: PipelineStatus = {
    components: {},
    consumer_groups: [],
    outbox: {},
    dlq: {},
    outbox_failed_by_reason: {},
    replication_slots: [],
    paused: [],
    vector_status: [],
    maintenance: { queued: 0, running: 0, failed: 0, last_done_at: null },
    errors: [],
  };
  await Promise.all([
    componentStatus(config, status).catch((e: unknown) => void status.errors.push(`stack: ${describeError(e)}`)),
    kafkaStatus(config, status).catch((e: unknown) => void status.errors.push(`kafka: ${describeError(e)}`)),
    sourceStatus(config, status).catch((e: unknown) => void status.errors.push(`source: ${describeError(e)}`)),
    vectorStatus(config, status).catch((e: unknown) => void status.errors.push(`vector_status: ${describeError(e)}`)),
  ]);
  return status;
}

async function componentStatus(config: Config, status: PipelineStatus): Promise<void> {
  const stack = await stackStatus(stackSettings(config));
  for (const c of Object.values(stack.components))
    status.components[c.name] = { state: c.state, port: c.port, pid: c.pid, version: c.version };
}

async function kafkaStatus(config: Config, status: PipelineStatus): Promise<void> {
  const kafka = createKafka(config.kafkaBrokers, 'vecsync-status', createLogger('silent'));
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = topicsFor(config.topicPrefix);
    const existing = new Set(await admin.listTopics());
    for (const service of SERVICES) {
      const topic = topics.dlq(service);
      if (!existing.has(topic)) continue;
      const offsets = await admin.fetchTopicOffsets(topic);
      status.dlq[service] = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    }
    const { groups } = await admin.listGroups();
    const ours = groups.map((g) => g.groupId).filter((g) => g.startsWith(`${config.groupPrefix}.`));
    for (const group of ours.sort()) {
      const committed = await admin.fetchOffsets({ groupId: group });
      for (const { topic, partitions } of committed) {
        if (!existing.has(topic)) continue;
        const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p]));
        let lag = 0;
        for (const p of partitions) {
          const end = ends.get(p.partition);
          if (!end) continue;
          // No committed offset yet (-1) means the group starts from the earliest message.
          const from = Number(p.offset) >= 0 ? Number(p.offset) : Number(end.low);
          lag += Math.max(0, Number(end.high) - from);
        }
        status.consumer_groups.push({ group, topic, lag, partitions: partitions.length });
      }
    }
  } finally {
    await admin.disconnect();
  }
}

async function sourceStatus(config: Config, status: PipelineStatus): Promise<void> {
  const client = new pg.Client({ connectionString: config.sourceUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const backlog = await client.query<{ lane: string; queued: string; failed: string; age: number | null }>(
      `SELECT lane,
              count(*) FILTER (WHERE status = 'queued') AS queued,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8 AS age
         FROM vecsync.vector_sync_outbox GROUP BY lane`,
    );
    for (const lane of LANES) status.outbox[lane] = { queued: 0, failed: 0, oldest_unapplied_age_seconds: 0 };
    for (const r of backlog.rows) {
      status.outbox[r.lane] = {
        queued: Number(r.queued),
        failed: Number(r.failed),
        oldest_unapplied_age_seconds: r.age ?? 0,
      };
    }
    const reasons = await client.query<{ reason: string; n: string }>(
      `SELECT coalesce(nullif(split_part(error, ':', 1), ''), 'unknown') AS reason, count(*) AS n
         FROM vecsync.vector_sync_outbox WHERE status = 'failed' GROUP BY 1`,
    );
    for (const r of reasons.rows) status.outbox_failed_by_reason[r.reason] = Number(r.n);
    const slots = await client.query<{
      slot_name: string;
      active: boolean;
      retained: string | null;
      wal_status: string | null;
      safe: string | null;
    }>(
      `SELECT slot_name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained,
              wal_status, safe_wal_size::text AS safe
         FROM pg_replication_slots ORDER BY slot_name`,
    );
    status.replication_slots = slots.rows.map((r) => ({
      slot_name: r.slot_name,
      active: r.active,
      retained_wal_bytes: Number(r.retained ?? 0),
      wal_status: r.wal_status,
      safe_wal_size_bytes: r.safe === null ? null : Number(r.safe),
    }));
    const sinks = await client.query<{ sink_name: string }>(`SELECT DISTINCT sink_name FROM vecsync.sync_state`);
    for (const slot of status.replication_slots) {
      const problem = slotProblem(
        slot,
        sinks.rows.map((r) => r.sink_name),
      );
      if (problem) status.errors.push(problem);
    }
    const paused = await client
      .query<{ sink_name: string; service: string; dependency: string; reason: string; since: Date }>(
        `SELECT sink_name, service, dependency, reason, since FROM vecsync.service_pauses ORDER BY since`,
      )
      .catch(() => ({ rows: [] })); // before migration 0008
    status.paused = paused.rows.map((r) => ({ ...r, since: r.since.toISOString() }));
  } finally {
    await client.end();
  }
}

const NUMERIC_COLUMNS = [
  'documents',
  'oldest_unapplied_age_seconds',
  'unapplied_events',
  'index_rows_changed_since_build',
  'documents_changed_since_build',
  'maintenance_queued',
  'maintenance_running',
  'drift_documents',
  'drift_pct',
  'backfill_done',
  'backfill_total',
] as const;

/** This sink's rows of vecsync.vector_status and its maintenance backlog (nothing before migration 0010). */
async function vectorStatus(config: Config, status: PipelineStatus): Promise<void> {
  const client = new pg.Client({ connectionString: config.sourceUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const exists = await client.query<{ ok: boolean }>(
      `SELECT to_regclass('vecsync.vector_status') IS NOT NULL AND to_regclass('vecsync.maintenance_jobs') IS NOT NULL AS ok`,
    );
    if (!exists.rows[0]?.ok) return;
    const rows = await client.query<Record<string, unknown>>(
      `SELECT sink_name, model_key, tenant_id, documents, last_applied_at, oldest_unapplied_age_seconds,
              unapplied_events, last_analyze_at, last_index_build_at, index_rows_changed_since_build,
              documents_changed_since_build, maintenance_queued, maintenance_running, last_reconcile_at,
              drift_documents, drift_pct, model_state, backfill_state, backfill_done, backfill_total, reembed_state
         FROM vecsync.vector_status WHERE sink_name = $1 ORDER BY model_key, tenant_id`,
      [config.sink.name],
    );
    const iso = (v: unknown) =>
      v instanceof Date ? v.toISOString() : v === null || v === undefined ? null : String(v);
    status.vector_status = rows.rows.map((r) => {
      const row = { ...r } as Record<string, unknown>;
      for (const c of NUMERIC_COLUMNS) row[c] = r[c] === null || r[c] === undefined ? null : Number(r[c]);
      for (const c of ['last_applied_at', 'last_analyze_at', 'last_index_build_at', 'last_reconcile_at'])
        row[c] = iso(r[c]);
      row.oldest_unapplied_age_seconds = Number(r.oldest_unapplied_age_seconds ?? 0);
      return row as unknown as VectorStatusRow;
    });
    const jobs = await client.query<{ queued: string; running: string; failed: string; last_done_at: Date | null }>(
      `SELECT count(*) FILTER (WHERE state = 'queued') AS queued, count(*) FILTER (WHERE state = 'running') AS running,
              count(*) FILTER (WHERE state = 'failed') AS failed, max(finished_at) FILTER (WHERE state = 'done') AS last_done_at
         FROM vecsync.maintenance_jobs WHERE sink_name = $1`,
      [config.sink.name],
    );
    const j = jobs.rows[0];
    status.maintenance = {
      queued: Number(j?.queued ?? 0),
      running: Number(j?.running ?? 0),
      failed: Number(j?.failed ?? 0),
      last_done_at: iso(j?.last_done_at),
    };
  } finally {
    await client.end();
  }
}

export function formatStatus(s: PipelineStatus): string {
  const lines: string[] = [];
  lines.push('components:');
  for (const [name, c] of Object.entries(s.components))
    lines.push(`  ${name.padEnd(9)} ${c.state.padEnd(9)} port ${c.port}  pid ${c.pid ?? '-'}`);
  lines.push('outbox (queued / failed / oldest unapplied age):');
  for (const [lane, o] of Object.entries(s.outbox))
    lines.push(`  ${lane.padEnd(9)} ${o.queued} / ${o.failed} / ${o.oldest_unapplied_age_seconds.toFixed(1)}s`);
  lines.push('consumer groups (lag):');
  for (const g of s.consumer_groups) lines.push(`  ${g.group}  ${g.topic}  lag ${g.lag}`);
  lines.push(
    `dead letters: ${
      Object.entries(s.dlq)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
  );
  const failed = Object.entries(s.outbox_failed_by_reason);
  if (failed.length) lines.push(`failed outbox rows: ${failed.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const slot of s.replication_slots)
    lines.push(
      `replication slot ${slot.slot_name}: ${slot.active ? 'active' : 'INACTIVE'}, wal_status ${slot.wal_status ?? '-'}, retains ${(slot.retained_wal_bytes / 1048576).toFixed(1)} MiB of WAL`,
    );
  for (const p of s.paused)
    lines.push(`PAUSED ${p.service} (sink ${p.sink_name}): ${p.dependency} ${p.reason} since ${p.since}`);
  const m = s.maintenance;
  lines.push(`pgvector maintenance: ${m.queued} queued, ${m.running} running, ${m.failed} failed`);
  if (s.vector_status.length > 0)
    lines.push('vector status (model / tenant: documents, oldest unapplied, changed since index build, drift):');
  // The text view shows the tenants with the most documents; `status --json` has every row.
  const shown = [...s.vector_status].sort((a, b) => b.documents - a.documents).slice(0, VECTOR_STATUS_LINES);
  for (const v of shown)
    lines.push(
      `  ${v.model_key} / ${v.tenant_id}: ${v.documents} docs, ${v.oldest_unapplied_age_seconds.toFixed(1)}s, ` +
        `${v.index_rows_changed_since_build ?? '-'} rows, ${v.drift_pct === null ? '-' : `${v.drift_pct}%`}`,
    );
  if (s.vector_status.length > shown.length)
    lines.push(`  … ${s.vector_status.length - shown.length} more (vecsync status --json)`);
  for (const e of s.errors) lines.push(`error: ${e}`);
  return lines.join('\n');
}
