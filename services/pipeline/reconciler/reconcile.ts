/**
 * One reconcile pass: the sink against the source of truth (documents, ACLs, tombstones, with the
 * ledger's chunk counts) and the state topic against the source, per tenant. See README.md in this
 * folder for the design; in short:
 *
 * Phase A (checksums, memory O(tenants × buckets) plus the state topic's key table):
 *   the sink is streamed tenant by tenant through `Sink.listDocuments` and the state topic is read
 *   to its end, both folded into per-bucket XOR checksums as they pass, while PostgreSQL computes
 *   the source's checksums of the same buckets (only hashes leave the database). Phase A only
 *   selects buckets: a document that changes during the pass makes its bucket differ at worst.
 * Phase B (detail, only for buckets whose checksums differ, at most `maxDetailDocuments` source
 *   rows at a time): the source rows of those buckets are loaded and the sink's documents of the
 *   same buckets streamed against them, each database filtering by bucket; the state topic's side is looked up in phase A's key
 *   table (the topic is read again only for keys the source does not know). Documents changed
 *   within the settle window are in flight, not drift. Every finding is confirmed by reading its
 *   source row again: if it changed meanwhile, it is in flight too.
 * Repair (optional) follows each confirmed batch (see plan.ts, repair.ts).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../../adapters/telemetry/log.ts';
import type { Kafka } from '../../adapters/kafka/client.ts';
import type { IndexSpec, Sink } from '../../adapters/sinks/types.ts';
import {
  bucketCount,
  bucketOf,
  classifyDocument,
  differingDigestBuckets,
  sinkDocumentDigest,
  DriftTally,
  wholeDocumentFinding,
  type Digest64,
  type DriftKind,
  type DriftReport,
  type ExpectedDocument,
  type SinkDocument,
  type TenantCounts,
} from '../../domain/transforms/drift.ts';
import type { RepairItem } from './plan.ts';
import { addRepairCounts, emptyRepairCounts, repairBatch, type RepairCounts } from './repair.ts';
import { sinkBucketSums, sinkDetail, type SinkSums } from './sink-scan.ts';
import {
  databaseNow,
  minusMs,
  settledCounts,
  sourceBucketSums,
  sourceByKeys,
  sourceDigests,
  type DigestRow,
  type TenantBuckets,
  tenantSizes,
  type SourceRow,
} from './source.ts';
import { saveReconcileResults, tenantResults } from './results.ts';
import { foldStateTopic, splitKey, StateDetail, stateBucketSums, type TopicState } from './state-topic.ts';

export interface ReconcilerDeps {
  /** Source database: documents, ACLs, tombstones, outbox and the ledger. */
  source: pg.Pool;
  sink: Sink;
  kafka: Kafka;
  /** The compacted state topic (`<prefix>.state.documents`). */
  stateTopic: string;
  /** VECSYNC_SINK_NAME: whose ledger rows to read. */
  sinkName: string;
  /** The model index to reconcile (the active model's by default). */
  index: IndexSpec;
  /** Each topic read uses a throw-away group `<groupPrefix>.reconcile.<run>.<n>`, deleted afterwards. */
  groupPrefix: string;
  log: Logger;
  /** The registered model of `index`, needed to re-embed; null: content repairs are skipped. */
  model: { name: string; version: number } | null;
}

export interface ReconcileOptions {
  /** Only these tenants (default: every tenant of the source, the sink and the state topic). */
  tenants?: string[];
  /** Re-enqueue events for what is found (default: report only). */
  repair?: boolean;
  /** Documents changed within this window are in flight, not drift. Default 60 s. */
  settleMs?: number;
  /** Document keys kept per kind in `samples`. Default 10. */
  sampleSize?: number;
  /** Source rows (digests) held at once in phase B, and read by one query. Default 100,000. */
  maxDetailDocuments?: number;
  /** Tenants scanned (phase A) and streamed from the sink in detail (phase B) at the same time. Default 4. */
  concurrency?: number;
  signal?: AbortSignal;
}

export const StateFinding = { missing: 'missing', extra: 'extra', stale: 'stale' } as const;
export type StateFinding = (typeof StateFinding)[keyof typeof StateFinding];

export interface ReconcileReport extends DriftReport {
  /** Settled searchable documents per tenant, as the source, the state topic and the sink count them. */
  counts: Record<string, TenantCounts>;
  /**
   * Keys whose latest state in the state topic disagrees with the source: `missing` (searchable in
   * the source, not in the topic), `extra` (searchable in the topic only), `stale` (other versions).
   */
  state_topic: Record<StateFinding, number> & { samples: Record<StateFinding, string[]> };
  /** Documents changed within the settle window: in flight, not judged. */
  pending: number;
  mode: 'dry-run' | 'repair';
  /** What `--repair` enqueued; null in a dry run. */
  repair: RepairCounts | null;
  scope: { sink: string; model: string; tenants: string[] | 'all'; settle_ms: number };
  stats: {
    tenants: number;
    /** Searchable documents of the source in scope. */
    source_documents: number;
    sink_documents: number;
    state_messages: number;
    state_keys: number;
    state_invalid: number;
    /** Bytes of the state topic's key table. */
    state_table_bytes: number;
    buckets: number;
    differing_buckets: number;
    /** Source rows read in detail (phase B). */
    detail_documents: number;
    /** Time spent on checksums (phase A) and on the differing buckets' detail and repairs (phase B). */
    phase_a_ms: number;
    phase_b_ms: number;
  };
  started_at: string;
  duration_ms: number;
}

interface Candidate {
  tenant: string;
  key: string;
  document: string;
  /** The source row the finding was made against (undefined: unknown to the source). */
  seen: SeenRow | undefined;
  /** `chunkEnd`: the highest chunk index the sink holds plus one (0 when it holds none). */
  sink?: { found: [DriftKind, number][]; whole: 'missing' | 'ghost' | undefined; chunkEnd: number };
  state?: { finding: StateFinding; topic: TopicState | null };
}

const CONFIRM_BATCH = 500;

/** Some differing buckets of one tenant, detailed together (phase B). */
interface DetailGroup extends TenantBuckets {
  /** Those whose sink checksums differ, and those whose state-topic checksums differ. */
  sink: Set<number>;
  state: Set<number>;
}

function toExpected(row: SourceRow): ExpectedDocument {
  return {
    tenant_id: row.tenant_id,
    document_id: row.document_id,
    version: row.version,
    acl_version: row.acl_version,
    acl: row.acl,
    deleted: row.status !== 'active',
    chunk_count: row.chunk_count,
  };
}

/**
 * What the sink should hold for a digest row, where its ACL and chunk count do not matter: the
 * document is not searchable (any chunk is a ghost), or the sink holds none of it (missing unless
 * the ledger recorded 0 chunks).
 */
function expectedOf(tenant: string, row: DigestRow): ExpectedDocument {
  return {
    tenant_id: tenant,
    document_id: row.document_id,
    version: row.version,
    acl_version: row.acl_version,
    acl: [],
    deleted: row.status !== 'active',
    chunk_count: row.held === null ? 0 : null,
  };
}

const sameDigest = (a: Digest64, b: Digest64) => a.hi === b.hi && a.lo === b.lo;

/** What a finding was judged against: compared with a fresh read before it counts. */
type SeenRow = Pick<SourceRow, 'version' | 'acl_version' | 'status'>;

function sameSource(a: SeenRow | undefined, b: SeenRow | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.version === b.version && a.acl_version === b.acl_version && a.status === b.status;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

export async function reconcile(deps: ReconcilerDeps, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const { source, sink, kafka, index, log } = deps;
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const settleMs = options.settleMs ?? 60_000;
  const sampleSize = options.sampleSize ?? 10;
  const maxDetail = options.maxDetailDocuments ?? 100_000;
  const signal = options.signal;
  const scope = options.tenants && options.tenants.length > 0 ? new Set(options.tenants) : null;
  const concurrency = options.concurrency ?? 4;
  const ledger = { sinkName: deps.sinkName, modelKey: index.modelKey };
  const run = `${Date.now().toString(36)}.${randomBytes(3).toString('hex')}`;
  const groupOf = (n: string) => `${deps.groupPrefix}.reconcile.${run}.${n}`;

  // ---- Phase A: checksums --------------------------------------------------------------------
  // The three sides are read at the same time: the source's sums are computed by PostgreSQL while
  // this process folds the sink and the state topic. A document changing meanwhile can only make a
  // bucket differ, and phase B judges it from fresh reads.
  // The settle window ends where the pass starts: phase B judges the state topic from phase A's
  // read, so a document changed since then is in flight for both the sink and the topic.
  const passStart = await databaseNow(source);
  const sizes = await tenantSizes(source, scope ? [...scope] : null);
  const bucketsOf = (tenant: string) => bucketCount(sizes.get(tenant) ?? 0);
  const sinkSums = new Map<string, SinkSums>();
  const [sinkTenants, fold, sourceSums] = await Promise.all([
    (async () => {
      const tenants = scope ? [...scope] : [...new Set([...sizes.keys(), ...(await sink.listTenants(index))])];
      await forEachLimit(tenants, concurrency, async (tenant) => {
        sinkSums.set(tenant, await sinkBucketSums(sink, index, tenant, bucketsOf(tenant), signal));
      });
      return tenants;
    })(),
    foldStateTopic(
      kafka,
      deps.stateTopic,
      groupOf('a'),
      (t) => (scope ? scope.has(t) : true),
      signal,
      [...sizes.values()].reduce((n, s) => n + s, 0),
    ),
    sourceBucketSums(source, new Map([...sizes.keys()].map((t) => [t, bucketsOf(t)])), ledger),
  ]);
  const tenants = (scope ? [...scope] : [...new Set([...sizes.keys(), ...sinkTenants, ...fold.tenants])]).sort();
  const stateSums = stateBucketSums(fold, bucketsOf);

  const diffs = new Map<string, { buckets: number; sink: number[]; state: number[] }>();
  let bucketTotal = 0;
  let differingTotal = 0;
  for (const tenant of tenants) {
    const buckets = bucketsOf(tenant);
    bucketTotal += buckets;
    const sinkDiff = differingDigestBuckets(buckets, sourceSums.get(tenant)?.held, sinkSums.get(tenant)?.held);
    const stateDiff = differingDigestBuckets(buckets, sourceSums.get(tenant)?.state, stateSums.get(tenant));
    differingTotal += new Set([...sinkDiff, ...stateDiff]).size;
    if (sinkDiff.length > 0 || stateDiff.length > 0) diffs.set(tenant, { buckets, sink: sinkDiff, state: stateDiff });
  }
  log.debug(
    { tenants: tenants.length, buckets: bucketTotal, differing: differingTotal },
    'reconcile: checksums compared',
  );

  // ---- Phase B: detail of the differing buckets ---------------------------------------------
  const phaseB = performance.now();
  const cutoff = await minusMs(source, passStart, settleMs);
  const settled = await settledCounts(source, tenants, cutoff);
  const tally = new DriftTally(sampleSize);
  // Principal digests shared by the sink documents of phase B (groups repeat; users rarely do).
  const principals = new Map<string, Digest64>();
  for (const tenant of tenants) tally.tenant(tenant);
  const stateTopic: ReconcileReport['state_topic'] = {
    missing: 0,
    extra: 0,
    stale: 0,
    samples: { missing: [], extra: [], stale: [] },
  };
  let pending = [...settled.values()].reduce((n, s) => n + s.pending, 0);
  let detailDocuments = 0;
  const repairs = options.repair ? emptyRepairCounts() : null;

  const stateWanted = new Map(
    [...diffs]
      .filter(([, d]) => d.state.length > 0)
      .map(([tenant, d]) => [tenant, { buckets: d.buckets, ids: new Set(d.state) }]),
  );
  const topicDetail = new StateDetail(fold, stateWanted);

  const candidates: Candidate[] = [];
  const flush = async () => {
    if (candidates.length === 0) return;
    const batch = candidates.splice(0, candidates.length);
    const fresh = await sourceByKeys(
      source,
      batch.map((c) => ({ tenant_id: c.tenant, document_id: c.document })),
      cutoff,
      ledger,
    );
    const items = new Map<string, RepairItem>();
    for (const c of batch) {
      const now = fresh.get(c.key);
      if (!sameSource(c.seen, now) || now?.pending) {
        pending++;
        continue;
      }
      const item = items.get(c.key) ?? { tenant_id: c.tenant, document_id: c.document, kinds: [] };
      if (c.sink) {
        tally.record(c.tenant, c.key, c.sink.found, c.sink.whole);
        item.kinds = [...item.kinds, ...c.sink.found.map(([kind]) => kind)];
        if (c.sink.chunkEnd > 0) item.sinkChunkEnd = Math.max(item.sinkChunkEnd ?? 0, c.sink.chunkEnd);
      }
      if (c.state) {
        stateTopic[c.state.finding]++;
        if (stateTopic.samples[c.state.finding].length < sampleSize) stateTopic.samples[c.state.finding].push(c.key);
        if (c.state.finding === StateFinding.missing) tally.stateTopic(c.tenant, -1);
        if (c.state.finding === StateFinding.extra) tally.stateTopic(c.tenant, 1);
        item.stateTopic = { topic: c.state.topic };
      }
      items.set(c.key, item);
    }
    if (repairs && items.size > 0) {
      addRepairCounts(repairs, await repairBatch(source, { ...ledger, model: deps.model }, [...items.values()]));
    }
  };
  const add = async (c: Candidate) => {
    candidates.push(c);
    if (candidates.length >= CONFIRM_BATCH) await flush();
  };

  // The differing buckets of each tenant in groups of at most `maxDetailDocuments` rows (from the
  // tenant's documents per bucket), groups of several tenants packed into batches of at most as
  // many: one source query per batch (the documents table is scanned once for all its tenants),
  // then its groups side by side against the sink, `concurrency` at a time.
  const batches: DetailGroup[][] = [];
  let batch: DetailGroup[] = [];
  let batchRows = 0;
  for (const [tenant, diff] of diffs) {
    const sinkBuckets = new Set(diff.sink);
    const stateBuckets = new Set(diff.state);
    const all = [...new Set([...diff.sink, ...diff.state])].sort((a, b) => a - b);
    const perBucket = Math.max(1, (sizes.get(tenant) ?? 0) / diff.buckets);
    const groupSize = Math.max(1, Math.floor(maxDetail / perBucket));
    for (let g = 0; g < all.length; g += groupSize) {
      const ids = all.slice(g, g + groupSize);
      const rows = ids.length * perBucket;
      if (batch.length > 0 && batchRows + rows > maxDetail) {
        batches.push(batch);
        batch = [];
        batchRows = 0;
      }
      batch.push({
        tenant,
        buckets: diff.buckets,
        ids,
        sink: new Set(ids.filter((b) => sinkBuckets.has(b))),
        state: new Set(ids.filter((b) => stateBuckets.has(b))),
      });
      batchRows += rows;
    }
  }
  if (batch.length > 0) batches.push(batch);

  for (const groups of batches) {
    if (signal?.aborted) throw signal.reason;
    // A tenant's groups never share a batch (all but its last fill one), so rows are per group.
    const digests = await sourceDigests(source, groups, cutoff, ledger);
    await forEachLimit(groups, concurrency, async (group) => {
      const { tenant, buckets, sink: sinkSet, state: stateSet } = group;
      const rows = digests.get(tenant) ?? [];
      detailDocuments += rows.length;
      const byDocument = new Map(rows.map((r) => [r.document_id, r]));

      if (sinkSet.size > 0) {
        const seen = new Set<string>();
        // Sink documents whose digest differs from the source's: judged against the full source
        // row, read for a batch of them at a time.
        const unsure: { row: DigestRow; doc: SinkDocument }[] = [];
        const judgeUnsure = async () => {
          const batch = unsure.splice(0, unsure.length);
          if (batch.length === 0) return;
          const full = await sourceByKeys(
            source,
            batch.map(({ row }) => ({ tenant_id: tenant, document_id: row.document_id })),
            cutoff,
            ledger,
          );
          for (const { row, doc } of batch) {
            const key = `${tenant}:${doc.document_id}`;
            const now = full.get(key);
            // Changed since its digest was read: in flight.
            if (!sameSource(row, now) || now!.pending) {
              pending++;
              continue;
            }
            await judge(tenant, key, doc.document_id, toExpected(now!), now, doc);
          }
        };
        for await (const doc of sinkDetail(sink, index, tenant, buckets, sinkSet)) {
          seen.add(doc.document_id);
          const row = byDocument.get(doc.document_id);
          if (row?.pending) continue;
          if (row?.status === 'active') {
            // The same digest: the sink holds exactly what it should.
            if (row.held && sameDigest(row.held, sinkDocumentDigest(doc, principals))) continue;
            unsure.push({ row, doc });
            if (unsure.length >= CONFIRM_BATCH) await judgeUnsure();
            continue;
          }
          // Unknown to the source, or not searchable: a ghost whatever the sink holds.
          await judge(
            tenant,
            `${tenant}:${doc.document_id}`,
            doc.document_id,
            row && expectedOf(tenant, row),
            row,
            doc,
          );
        }
        await judgeUnsure();
        for (const row of rows) {
          if (seen.has(row.document_id) || row.pending) continue;
          if (!sinkSet.has(bucketOf(tenant, row.document_id, buckets))) continue;
          await judge(tenant, `${tenant}:${row.document_id}`, row.document_id, expectedOf(tenant, row), row, undefined);
        }
      }

      if (stateSet.size > 0) {
        for (const row of rows) {
          if (!stateSet.has(bucketOf(tenant, row.document_id, buckets))) continue;
          const key = `${tenant}:${row.document_id}`;
          // Looked up even when pending: a key the source has is never a topic-only key.
          const topic = topicDetail.lookup(key);
          if (row.pending) continue;
          const inSource = row.status === 'active';
          const inTopic = topic?.searchable === true;
          const finding =
            inSource && !inTopic
              ? StateFinding.missing
              : !inSource && inTopic
                ? StateFinding.extra
                : inSource && (topic!.version !== row.version || topic!.acl_version !== row.acl_version)
                  ? StateFinding.stale
                  : undefined;
          if (finding)
            await add({ tenant, key, document: row.document_id, seen: row, state: { finding, topic: topic ?? null } });
        }
      }
    });
  }
  // Keys only the topic knows (no document, no tombstone) in the differing buckets: the one case
  // that reads the topic again, for those keys only.
  for (const [key, topic] of await topicDetail.unknownKeys(kafka, deps.stateTopic, groupOf('b'), signal)) {
    const parts = splitKey(key);
    if (!topic.searchable || !parts) continue;
    await add({
      tenant: parts.tenant,
      key,
      document: parts.document,
      seen: undefined,
      state: { finding: StateFinding.extra, topic },
    });
  }
  await flush();

  async function judge(
    tenant: string,
    key: string,
    document: string,
    expected: ExpectedDocument | undefined,
    row: SeenRow | undefined,
    doc: SinkDocument | undefined,
  ): Promise<void> {
    const found = classifyDocument(expected, doc);
    if (found.length === 0) return;
    const chunkEnd = doc ? Math.max(0, ...doc.chunk_indexes) + (doc.chunk_indexes.length > 0 ? 1 : 0) : 0;
    await add({ tenant, key, document, seen: row, sink: { found, whole: wholeDocumentFinding(found, doc), chunkEnd } });
  }

  const sourceCounts = new Map(tenants.map((t) => [t, settled.get(t)?.searchable ?? 0]));
  const drift = tally.report(sourceCounts);
  let sinkDocuments = 0;
  for (const s of sinkSums.values()) sinkDocuments += s.documents;
  let searchable = 0;
  for (const s of sourceSums.values()) searchable += s.state.total();
  const report: ReconcileReport = {
    drift: drift.drift,
    tenants: drift.tenants,
    samples: drift.samples,
    counts: drift.counts ?? {},
    state_topic: stateTopic,
    pending,
    mode: options.repair ? 'repair' : 'dry-run',
    repair: repairs,
    scope: {
      sink: deps.sinkName,
      model: index.modelKey,
      tenants: scope ? [...scope].sort() : 'all',
      settle_ms: settleMs,
    },
    stats: {
      tenants: tenants.length,
      source_documents: searchable,
      sink_documents: sinkDocuments,
      state_messages: fold.messages,
      state_keys: fold.table.size,
      state_invalid: fold.invalid,
      state_table_bytes: fold.table.bytes,
      buckets: bucketTotal,
      differing_buckets: differingTotal,
      detail_documents: detailDocuments,
      phase_a_ms: Math.round(phaseB - started),
      phase_b_ms: Math.round(performance.now() - phaseB),
    },
    started_at: startedAt,
    duration_ms: Math.round(performance.now() - started),
  };
  log.debug({ drift: report.drift, stats: report.stats, duration_ms: report.duration_ms }, 'reconcile pass finished');
  // For vecsync.vector_status (drift %). A database without that table (not migrated yet) only
  // loses the record, not the pass.
  await saveReconcileResults(
    source,
    { ...ledger, mode: report.mode },
    tenantResults(report.tenants, report.counts),
  ).catch((error: unknown) =>
    log.warn({ err: (error as Error).message }, 'reconcile: could not record the result per tenant'),
  );
  return report;
}
