/**
 * Reconciler benchmark, in one run:
 * 1. 100,000 documents (BENCH_RECONCILE_DOCS) over 10 tenants: BENCH_RECONCILE_RUNS rounds of
 *    baseline, clean pass and 1 %-drift pass, interleaved so a burst of load on this shared machine
 *    hits all three; medians reported, and the drift/clean ratio;
 * 2. 1,000,000 documents (BENCH_RECONCILE_LARGE_DOCS; 0 leaves it out): one clean pass and one
 *    1 %-drift pass, time and peak RSS.
 *
 * The data is seeded directly with set-based SQL, so the benchmark measures the reconciler, not
 * the pipeline (and 1M documents seed in minutes, not hours):
 * - source: documents and ACLs inserted with `session_replication_role = replica` (no trigger, so no
 *   outbox event), ledger rows inserted for a dedicated sink name and model key, in transactions of
 *   50,000 documents, each waiting until the cluster's replication slots have caught up (the shared
 *   Debezium slot decodes this WAL too, and is invalidated past `max_slot_wal_keep_size`);
 * - sink: the model's chunk table created by the pgvector sink for a dedicated 4-dimension model
 *   key, its HNSW index dropped (the reconciler never searches) and the table made UNLOGGED (no WAL;
 *   reads are the same), chunks and ACL rows inserted with
 *   INSERT ... SELECT (1 or 2 chunks per document);
 * - state topic: a dedicated compacted topic, one state message per document plus older states
 *   of 10 % of them first (so "latest per key" has work to do);
 * - every seeded table is ANALYZEd afterwards, so plans do not depend on when autovacuum comes by.
 * Drift is 1 % of the documents (by a hash of the id) deleted from the sink, and put back after the
 * drift pass. Everything is removed afterwards (BENCH_RECONCILE_KEEP=1 keeps the data sets;
 * `--cleanup '<setup json>'` removes one).
 *
 * Each measured run is a child process, so its peak RSS (getrusage maxRSS, and VmHWM from /proc) is
 * the reconciling process's own:
 * - baseline: read the state topic to its end and stream every sink document, nothing else;
 * - reconcile: a full pass (`reconcile()`, dry run, settle 0).
 * Results go to bench/results/<date>-reconcile.{json,md}.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfig, type Config } from '../services/config/index.ts';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { provisionTopics } from '../services/adapters/kafka/admin.ts';
import { createKafka } from '../services/adapters/kafka/client.ts';
import { readCompactedToEnd } from '../services/adapters/kafka/compacted.ts';
import { createProducer } from '../services/adapters/kafka/producer.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { reconcile, type ReconcileReport } from '../services/pipeline/reconciler/reconcile.ts';
import { chunkTableNames } from '../services/adapters/sinks/pgvector/naming.ts';
import { createSink } from '../services/adapters/sinks/index.ts';
import type { IndexSpec } from '../services/adapters/sinks/types.ts';
import { withAdmin } from '../test/support/kafka.ts';
import { ensureStack } from '../test/support/stack.ts';
import { codeVersion } from './code-version.ts';

const HERE = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(HERE), '..');
const RESULTS = path.join(REPO, 'bench', 'results');
const DOCS = Number(process.env.BENCH_RECONCILE_DOCS ?? 100_000);
const LARGE_DOCS = Number(process.env.BENCH_RECONCILE_LARGE_DOCS ?? 1_000_000);
const TENANTS = Number(process.env.BENCH_RECONCILE_TENANTS ?? 10);
const DUPLICATE_EVERY = 10; // one document in ten also has an older state earlier in the topic
const BENCH_RUNS = Number(process.env.BENCH_RECONCILE_RUNS ?? 3);
const SEED_SLICE = 50_000; // documents per transaction: about 190 MB of WAL on the source side
const TARGETS = {
  cleanDocumentsPerSecond: 30_000,
  driftDocumentsPerSecond: 20_000,
  driftOverClean: 1.5,
  largeSeconds: 60,
  largeMaxRssMiB: 300,
};

interface BenchSetup {
  run: string;
  documents: number;
  tenantPrefix: string;
  sinkName: string;
  topicPrefix: string;
  modelKey: string;
  dimensions: number;
  tenants: string[];
}

interface ChildResult {
  seconds: number;
  /** Peak resident set of the child process (MiB), from getrusage. */
  maxRssMiB: number;
  /** The same peak as the kernel's VmHWM of the process (MiB; null off Linux). */
  vmHwmMiB: number | null;
  /** Resident set after imports and connections, before the measured work (MiB). */
  startRssMiB: number;
  heapUsedMiB: number;
  report?: Pick<ReconcileReport, 'drift' | 'stats' | 'pending'>;
  baseline?: { stateMessages: number; sinkDocuments: number };
}

function benchConfig(setup: BenchSetup): Config {
  return loadConfig({
    ...process.env,
    VECSYNC_EMBEDDER: 'hashing',
    VECSYNC_LOG_LEVEL: 'warn',
    VECSYNC_SINK_NAME: setup.sinkName,
    VECSYNC_TOPIC_PREFIX: setup.topicPrefix,
  });
}

function newSetup(documents: number): BenchSetup {
  const run = randomBytes(4).toString('hex');
  const tenantPrefix = `rbench_${run}_t`;
  return {
    run,
    documents,
    tenantPrefix,
    sinkName: `rb_${run}`,
    topicPrefix: `bench-reconcile-${run}`,
    modelKey: `rbench-${run}.v1`,
    dimensions: 4,
    tenants: Array.from({ length: TENANTS }, (_, t) => `${tenantPrefix}${t}`),
  };
}

const mib = (bytes: number) => bytes / 2 ** 20;

// ---------------------------------------------------------------------------------------------
// Child: one measured run
// ---------------------------------------------------------------------------------------------

async function vmHwmMiB(): Promise<number | null> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    return kib === undefined ? null : Number(kib) / 1024;
  } catch {
    return null;
  }
}

async function child(mode: 'baseline' | 'reconcile', setup: BenchSetup): Promise<ChildResult> {
  const config = benchConfig(setup);
  const log = createLogger('warn', 'bench-reconcile');
  const kafka = createKafka(config.kafkaBrokers, `bench-reconcile-${setup.run}`, log);
  const source = new pg.Pool({ connectionString: config.sourceUrl, max: 4 });
  const sink = await createSink(config, { log });
  const index: IndexSpec = { modelKey: setup.modelKey, dimensions: setup.dimensions };
  const topic = topicsFor(setup.topicPrefix).state;
  try {
    await source.query('SELECT 1');
    await sink.healthCheck();
    const startRss = process.memoryUsage().rss;
    const t0 = performance.now();
    let result: Pick<ChildResult, 'report' | 'baseline'>;
    if (mode === 'baseline') {
      let sinkDocuments = 0;
      const [read] = await Promise.all([
        readCompactedToEnd(kafka, topic, () => undefined, {
          groupId: `bench.reconcile.${setup.run}.${randomBytes(3).toString('hex')}`,
        }),
        (async () => {
          let next = 0;
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              while (next < setup.tenants.length) {
                for await (const doc of sink.listDocuments(index, setup.tenants[next++]!)) if (doc) sinkDocuments++;
              }
            }),
          );
        })(),
      ]);
      result = { baseline: { stateMessages: read.messages, sinkDocuments } };
    } else {
      const report = await reconcile(
        {
          source,
          sink,
          kafka,
          stateTopic: topic,
          sinkName: setup.sinkName,
          index,
          groupPrefix: `bench.reconcile.${setup.run}`,
          log,
          model: null,
        },
        { tenants: setup.tenants, settleMs: 0 },
      );
      result = { report: { drift: report.drift, stats: report.stats, pending: report.pending } };
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      ...result,
      seconds,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      vmHwmMiB: await vmHwmMiB(),
      startRssMiB: mib(startRss),
      heapUsedMiB: mib(process.memoryUsage().heapUsed),
    };
  } finally {
    await sink.close();
    await source.end();
  }
}

/**
 * The children run from an esbuild bundle of this file, as the CLI runs from its bundle in dist/
 * (through tsx, its loader thread adds about 20 MiB to every RSS figure). BENCH_RECONCILE_TSX=1 runs
 * them through tsx instead.
 */
const CHILD_BUNDLE = path.join(REPO, 'dist', 'bench', 'reconcile-child.mjs');
const CHILD_RUNTIME = process.env.BENCH_RECONCILE_TSX === '1' ? 'tsx' : 'bundle';

async function bundleChild(): Promise<void> {
  if (CHILD_RUNTIME !== 'bundle') return;
  await promisify(execFile)(path.join(REPO, 'node_modules', '.bin', 'esbuild'), [
    HERE,
    '--bundle',
    '--platform=node',
    '--format=esm',
    '--target=node20',
    '--packages=external',
    `--outfile=${CHILD_BUNDLE}`,
    '--log-level=warning',
  ]);
}

async function runChild(mode: 'baseline' | 'reconcile', setup: BenchSetup): Promise<ChildResult> {
  const entry = CHILD_RUNTIME === 'bundle' ? [CHILD_BUNDLE] : ['--import', 'tsx', HERE];
  const { stdout } = await promisify(execFile)(process.execPath, [...entry, '--child', mode, JSON.stringify(setup)], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
}

// ---------------------------------------------------------------------------------------------
// Seeding, drift and cleanup
// ---------------------------------------------------------------------------------------------

/** The same deterministic rows on every side: document i (in [$1, $2)) of tenant i % $4. */
const SERIES = `FROM generate_series($1::int, $2::int - 1) AS i`;
const TENANT = `$3 || (i % $4)`;
const DOCUMENT = `'doc-' || lpad(i::text, 7, '0')`;
const VERSION = `(1 + i % 5)`;
const ACL_VERSION = `(1 + i % 3)`;
const CHUNKS = `(CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END)`;
const ACL = `ARRAY['group:g' || (i % 20), 'user:u' || i]`;
/** The drifted 1 %: spread over every tenant by a hash of the document id. */
const DRIFTED = (document: string) => `abs(hashtext(${document})) % 100 = 0`;

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const chunkInsert = (table: string, where = '') =>
  `INSERT INTO ${table} (sink_name, id, tenant_id, document_id, chunk_index, document_version, content_hash, model_key, title, metadata, content, embedding)
   SELECT $5, ${TENANT} || ':' || ${DOCUMENT} || '#' || c, ${TENANT}, ${DOCUMENT}, c, ${VERSION}, 'h', $6, 'Title', '{}', 'chunk', '[1,2,3,4]'
     ${SERIES} CROSS JOIN LATERAL generate_series(0, ${CHUNKS} - 1) AS c ${where}`;

/**
 * Waits until every healthy replication slot of the cluster (Debezium's, and any other work's on
 * this shared stack) retains at most a quarter of `max_slot_wal_keep_size` (2 GiB when unset). A
 * 1M-document seed writes about 3.7 GB of WAL, more than the local stack lets a slot fall behind:
 * seeding it at full speed invalidated the shared Debezium slot. Gives up after 5 minutes.
 */
async function waitForSlots(config: Config): Promise<void> {
  await withClient(config.sourceUrl, async (c) => {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const { rows } = await c.query<{ retained: string | null; limit: string }>(
        `SELECT (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM pg_replication_slots
                  WHERE wal_status IN ('reserved', 'extended') AND restart_lsn IS NOT NULL)::bigint::text AS retained,
                (CASE WHEN current_setting('max_slot_wal_keep_size') = '-1' THEN 2147483648
                      ELSE pg_size_bytes(current_setting('max_slot_wal_keep_size')) / 4 END)::bigint::text AS limit`,
      );
      const retained = Number(rows[0]?.retained ?? 0);
      const limit = Number(rows[0]!.limit);
      if (retained <= limit) return;
      if (Date.now() > deadline) {
        throw new Error(
          `replication slots retain ${Math.round(retained / 2 ** 20)} MiB of WAL and do not catch up; stopping before they are invalidated`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
}

async function seed(config: Config, setup: BenchSetup): Promise<void> {
  const slices: [number, number][] = [];
  for (let lo = 0; lo < setup.documents; lo += SEED_SLICE)
    slices.push([lo, Math.min(setup.documents, lo + SEED_SLICE)]);

  await withClient(config.sourceUrl, async (source) => {
    for (const [lo, hi] of slices) {
      await waitForSlots(config);
      await source.query('BEGIN');
      // No trigger fires: no outbox event, no state row, versions as given.
      await source.query(`SET LOCAL session_replication_role = replica`);
      const args = [lo, hi, setup.tenantPrefix, TENANTS];
      await source.query(
        `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status, metadata, version, acl_version, updated_at)
         SELECT ${TENANT}, ${DOCUMENT}, 'Title ' || i, 'Body of document ' || i, 'en', 'active', '{}', ${VERSION}, ${ACL_VERSION},
                now() - interval '1 hour' ${SERIES}`,
        args,
      );
      await source.query(
        `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal)
         SELECT ${TENANT}, ${DOCUMENT}, p ${SERIES}, unnest(${ACL}) AS p`,
        args,
      );
      await source.query(
        `INSERT INTO vecsync.sync_state (sink_name, tenant_id, document_id, model_key, version, acl_version, acl, chunk_count, content_hash, tombstone, applied_at)
         SELECT $5, ${TENANT}, ${DOCUMENT}, $6, ${VERSION}, ${ACL_VERSION}, ${ACL}, ${CHUNKS}, 'bench', false, now() ${SERIES}`,
        [...args, setup.sinkName, setup.modelKey],
      );
      await source.query('COMMIT');
    }
    await source.query('ANALYZE vecsync.documents, vecsync.document_acl, vecsync.sync_state');
  });

  const sink = await createSink(config);
  const index = { modelKey: setup.modelKey, dimensions: setup.dimensions };
  await sink.ensureIndex(index);
  await sink.close();
  const names = chunkTableNames(setup.modelKey);
  await withClient(config.sink.pgvector.url, async (vectors) => {
    await vectors.query(`DROP INDEX IF EXISTS vecsync_sink.${pg.escapeIdentifier(names.hnswIndex)}`);
    // The bench's own chunk table writes no WAL (reads are the same); the shared ACL table does.
    await vectors.query(`ALTER TABLE ${names.qualified} SET UNLOGGED`);
    for (const [lo, hi] of slices) {
      await waitForSlots(config);
      const args = [lo, hi, setup.tenantPrefix, TENANTS, setup.sinkName, setup.modelKey];
      await vectors.query(chunkInsert(names.qualified), args);
      await vectors.query(
        `INSERT INTO vecsync_sink.document_acl (sink_name, tenant_id, document_id, acl, acl_version, document_version)
         SELECT $5, ${TENANT}, ${DOCUMENT}, ${ACL}, ${ACL_VERSION}, ${VERSION} ${SERIES}`,
        args.slice(0, 5),
      );
    }
    await vectors.query(`ANALYZE ${names.qualified}, vecsync_sink.document_acl`);
  });

  const log = createLogger('warn', 'bench-reconcile');
  const kafka = createKafka(config.kafkaBrokers, `bench-reconcile-${setup.run}`, log);
  const topic = topicsFor(setup.topicPrefix).state;
  await provisionTopics(kafka, [{ topic, partitions: 6, configs: { 'cleanup.policy': 'compact' } }]);
  const producer = await createProducer(kafka);
  try {
    const state = (i: number, older: boolean) => {
      const version = 1 + (i % 5);
      const tenant = `${setup.tenantPrefix}${i % TENANTS}`;
      const document = `doc-${String(i).padStart(7, '0')}`;
      return {
        key: `${tenant}:${document}`,
        value: JSON.stringify({
          tenant_id: tenant,
          document_id: document,
          version: older ? version - 1 : version,
          acl_version: 1 + (i % 3),
          status: 'active',
          acl: [`group:g${i % 20}`, `user:u${i}`].sort(),
          content_hash: 'bench',
          deleted: false,
          updated_at: new Date().toISOString(),
        }),
      };
    };
    // The older states first (every DUPLICATE_EVERY-th document), then every document's latest;
    // batches of 5,000, four in flight.
    const batches: { from: number; to: number; older: boolean }[] = [];
    for (let at = 0; at < setup.documents; at += 5_000 * DUPLICATE_EVERY) {
      batches.push({ from: at, to: Math.min(setup.documents, at + 5_000 * DUPLICATE_EVERY), older: true });
    }
    for (let at = 0; at < setup.documents; at += 5_000) {
      batches.push({ from: at, to: Math.min(setup.documents, at + 5_000), older: false });
    }
    const send = async (b: (typeof batches)[number]) => {
      const messages = [];
      for (let i = b.from; i < b.to; i++) if (!b.older || i % DUPLICATE_EVERY === 0) messages.push(state(i, b.older));
      await producer.send(topic, messages);
    };
    // Older states must precede the latest ones of the same key: send them all first.
    const older = batches.filter((b) => b.older);
    const latest = batches.filter((b) => !b.older);
    for (const list of [older, latest]) {
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < list.length) await send(list[next++]!);
        }),
      );
    }
  } finally {
    await producer.close();
  }
}

/** Deletes the drifted 1 % from the sink; returns how many documents. */
async function injectMissing(config: Config, setup: BenchSetup): Promise<number> {
  return withClient(config.sink.pgvector.url, async (vectors) => {
    const res = await vectors.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM ${chunkTableNames(setup.modelKey).qualified}
          WHERE sink_name = $1 AND tenant_id LIKE $2 AND ${DRIFTED('document_id')}
          RETURNING tenant_id, document_id
       ) SELECT count(DISTINCT (tenant_id, document_id))::int AS n FROM gone`,
      [setup.sinkName, `${setup.tenantPrefix}%`],
    );
    const documents = res.rows[0]!.n;
    if (documents === 0) throw new Error('nothing deleted');
    return documents;
  });
}

/** Puts the drifted 1 % back. */
async function restoreMissing(config: Config, setup: BenchSetup): Promise<void> {
  await withClient(config.sink.pgvector.url, (vectors) =>
    vectors.query(chunkInsert(chunkTableNames(setup.modelKey).qualified, `WHERE ${DRIFTED(DOCUMENT)}`), [
      0,
      setup.documents,
      setup.tenantPrefix,
      TENANTS,
      setup.sinkName,
      setup.modelKey,
    ]),
  );
}

async function cleanup(config: Config, setup: BenchSetup): Promise<void> {
  await withClient(config.sourceUrl, async (source) => {
    // One tenant per transaction, as the seeding is sliced, minding the replication slots.
    for (const tenant of setup.tenants) {
      await waitForSlots(config);
      await source.query('BEGIN');
      await source.query(`SET LOCAL session_replication_role = replica`);
      await source.query(`DELETE FROM vecsync.document_acl WHERE tenant_id = $1`, [tenant]);
      await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1`, [tenant]);
      await source.query(`DELETE FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2`, [
        setup.sinkName,
        tenant,
      ]);
      await source.query('COMMIT');
    }
    await source.query(`DELETE FROM vecsync.sync_state WHERE sink_name = $1`, [setup.sinkName]);
  });
  await withClient(config.sink.pgvector.url, async (vectors) => {
    await vectors.query(`DROP TABLE IF EXISTS ${chunkTableNames(setup.modelKey).qualified}`);
    for (const tenant of setup.tenants) {
      await waitForSlots(config);
      await vectors.query(`DELETE FROM vecsync_sink.document_acl WHERE sink_name = $1 AND tenant_id = $2`, [
        setup.sinkName,
        tenant,
      ]);
    }
    await vectors.query(`DELETE FROM vecsync_sink.document_acl WHERE sink_name = $1`, [setup.sinkName]);
  });
  await withAdmin(config.kafkaBrokers, (admin) => admin.deleteTopics({ topics: [topicsFor(setup.topicPrefix).state] }));
}

// ---------------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------------

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const medianRun = (runs: ChildResult[]) => runs.find((r) => r.seconds === median(runs.map((x) => x.seconds)))!;
const load1 = () => os.loadavg()[0]!;
const say = (line: string) => process.stdout.write(`${line}\n`);
const secondsSince = (t: number) => (performance.now() - t) / 1000;

function assertClean(result: ChildResult, what: string): void {
  if (Object.values(result.report!.drift).some((n) => n !== 0)) {
    throw new Error(`${what}: clean bench data reported drift: ${JSON.stringify(result.report!.drift)}`);
  }
}

function assertMissing(result: ChildResult, injected: number, what: string): void {
  if (result.report!.drift.missing !== injected) {
    throw new Error(`${what}: expected ${injected} missing, got ${JSON.stringify(result.report!.drift)}`);
  }
}

const describeRun = (r: ChildResult, documents: number) =>
  `${r.seconds.toFixed(2)} s = ${(documents / r.seconds).toFixed(0)} documents/s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB; phase A ${r.report?.stats.phase_a_ms} ms, phase B ${r.report?.stats.phase_b_ms} ms`;

async function withData<T>(config: Config, setup: BenchSetup, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    if (process.env.BENCH_RECONCILE_KEEP === '1') {
      say(`kept (BENCH_RECONCILE_KEEP=1; remove with --cleanup): ${JSON.stringify(setup)}`);
    } else {
      await cleanup(config, setup).catch((error: unknown) =>
        process.stderr.write(`reconcile bench cleanup failed (${setup.run}): ${String(error)}\n`),
      );
    }
  }
}

async function seedTimed(config: Config, setup: BenchSetup): Promise<number> {
  say(`seeding ${setup.documents} documents over ${TENANTS} tenants (source, ledger, sink, state topic)...`);
  const t = performance.now();
  await seed(config, setup);
  const seconds = secondsSince(t);
  say(`  seeded in ${seconds.toFixed(1)} s`);
  return seconds;
}

export async function runReconcileBench(): Promise<void> {
  const benchStart = performance.now();
  const small = newSetup(DOCS);
  const config = benchConfig(small);
  await ensureStack(config);
  await bundleChild();
  const loadAtStart = os.loadavg();

  // ---- 100k: baseline, clean and 1 %-drift passes, interleaved ------------------------------
  const baselines: ChildResult[] = [];
  const cleans: ChildResult[] = [];
  const drifts: ChildResult[] = [];
  const load: number[] = [];
  let injected = 0;
  const smallSeed = await withData(config, small, async () => {
    const seconds = await seedTimed(config, small);
    say(
      `${BENCH_RUNS} × (baseline: read the state topic to its end and stream every sink document; clean pass; 1 % missing pass)`,
    );
    for (let i = 0; i < BENCH_RUNS; i++) {
      load.push(load1());
      const b = await runChild('baseline', small);
      const c = await runChild('reconcile', small);
      assertClean(c, 'clean pass');
      injected = await injectMissing(config, small);
      const d = await runChild('reconcile', small);
      assertMissing(d, injected, 'drift pass');
      await restoreMissing(config, small);
      baselines.push(b);
      cleans.push(c);
      drifts.push(d);
      say(
        `  round ${i + 1} (load ${load[i]!.toFixed(1)}): baseline ${b.seconds.toFixed(2)} s, clean ${c.seconds.toFixed(2)} s, drift ${d.seconds.toFixed(2)} s (${(d.seconds / c.seconds).toFixed(2)} ×)`,
      );
    }
    return seconds;
  });
  const baseline = medianRun(baselines);
  const clean = medianRun(cleans);
  const drifted = medianRun(drifts);
  // The ratio of each round's drift pass to its own clean pass (same load), median of rounds.
  const ratios = drifts.map((d, i) => d.seconds / cleans[i]!.seconds);
  const ratio = median(ratios);
  say(`  baseline (median) ${baseline.seconds.toFixed(2)} s, peak RSS ${baseline.maxRssMiB.toFixed(0)} MiB`);
  say(`  clean (median) ${describeRun(clean, DOCS)}`);
  say(`  1 % drift (median) ${describeRun(drifted, DOCS)}; ${injected} missing found`);
  say(`  drift / clean: ${ratio.toFixed(2)} (median of the rounds' ratios)`);

  // ---- 1M: one clean and one 1 %-drift pass ---------------------------------------------------
  let large:
    { seedSeconds: number; load: number[]; clean: ChildResult; drift: ChildResult; injected: number } | undefined;
  if (LARGE_DOCS > 0) {
    const big = newSetup(LARGE_DOCS);
    const bigConfig = benchConfig(big);
    large = await withData(bigConfig, big, async () => {
      const seedSeconds = await seedTimed(bigConfig, big);
      const loads = [load1()];
      const c = await runChild('reconcile', big);
      assertClean(c, '1M clean pass');
      say(`  1M clean (load ${loads[0]!.toFixed(1)}): ${describeRun(c, LARGE_DOCS)}`);
      const n = await injectMissing(bigConfig, big);
      loads.push(load1());
      const d = await runChild('reconcile', big);
      assertMissing(d, n, '1M drift pass');
      say(`  1M 1 % drift (load ${loads[1]!.toFixed(1)}): ${describeRun(d, LARGE_DOCS)}; ${n} missing found`);
      return { seedSeconds, load: loads, clean: c, drift: d, injected: n };
    });
  }

  const pgVersion = await withClient(
    config.sourceUrl,
    async (c) => (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version,
  );
  const result = {
    date: new Date().toISOString(),
    conditions: {
      code: await codeVersion(process.env.BENCH_RECONCILE_COMMIT),
      cpu: os.cpus()[0]?.model,
      cores: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres: pgVersion,
      documents: DOCS,
      largeDocuments: LARGE_DOCS,
      tenants: TENANTS,
      chunksPerDocument: '1 (2 for every third document)',
      principalsPerDocument: 2,
      stateMessagesPerDocument: 1 + 1 / DUPLICATE_EVERY,
      statePartitions: 6,
      drift: '1 % of the documents (abs(hashtext(document_id)) % 100 = 0) deleted from the sink',
      settleMs: 0,
      childRuntime:
        CHILD_RUNTIME === 'bundle'
          ? 'each measured run is `node` on an esbuild bundle of bench/reconcile.ts (as the CLI runs from dist/)'
          : 'each measured run is `node --import tsx bench/reconcile.ts`',
      seeding:
        'set-based SQL straight into the source (triggers off), ledger and sink (no HNSW index, unlogged chunk table), in slices of 50,000 documents that wait for the replication slots to catch up, tables ANALYZEd; state topic produced directly',
      seedSeconds: { small: smallSeed, large: large?.seedSeconds ?? null },
      loadAverageAtStart: loadAtStart,
      loadAverage1m: { small: load, large: large?.load ?? [] },
      benchSeconds: secondsSince(benchStart),
      note: 'PostgreSQL (source and sink databases), Kafka and the reconciler on this one machine, shared with other work',
    },
    baseline: { ...baseline, runs: baselines.map((b) => b.seconds) },
    clean: { ...clean, documentsPerSecond: DOCS / clean.seconds, runs: cleans.map((c) => c.seconds) },
    drift1pct: {
      ...drifted,
      documentsPerSecond: DOCS / drifted.seconds,
      injectedMissing: injected,
      runs: drifts.map((d) => d.seconds),
    },
    driftOverClean: { median: ratio, rounds: ratios },
    large: large
      ? {
          clean: { ...large.clean, documentsPerSecond: LARGE_DOCS / large.clean.seconds },
          drift1pct: {
            ...large.drift,
            documentsPerSecond: LARGE_DOCS / large.drift.seconds,
            injectedMissing: large.injected,
          },
        }
      : null,
    targets: TARGETS,
  };
  await mkdir(RESULTS, { recursive: true });
  const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
  await writeFile(path.join(RESULTS, `${stamp}-reconcile.json`), JSON.stringify(result, null, 2) + '\n');
  const row = (label: string, r: ChildResult, documents: number, target = '') =>
    `| ${label} | ${r.seconds.toFixed(2)} s | ${(documents / r.seconds).toFixed(0)}${target} | ${r.maxRssMiB.toFixed(0)} MiB (${r.startRssMiB.toFixed(0)} MiB) | ${r.report ? `${r.report.stats.phase_a_ms} / ${r.report.stats.phase_b_ms} ms` : '–'} |`;
  const runs = (list: ChildResult[]) => list.map((r) => r.seconds.toFixed(2)).join(', ');
  const md = [
    `# Reconcile benchmark, ${result.date}`,
    '',
    `Conditions: code ${result.conditions.code}; ${result.conditions.cores} × ${result.conditions.cpu}, ${result.conditions.memoryGiB} GiB, Node ${result.conditions.node}, PostgreSQL ${pgVersion}; ${TENANTS} tenants, ${result.conditions.chunksPerDocument} chunks and 2 principals per document, 1.1 state messages per document (10 % of the keys twice) in 6 partitions; data seeded with ${result.conditions.seeding} (${smallSeed.toFixed(0)} s for ${DOCS}${large ? `, ${large.seedSeconds.toFixed(0)} s for ${LARGE_DOCS}` : ''}); drift: ${result.conditions.drift}; settle 0; ${result.conditions.childRuntime}. ${result.conditions.note}. Load average (1 min) at start ${loadAtStart.map((l) => l.toFixed(1)).join(' ')}; at each 100k round ${load.map((l) => l.toFixed(1)).join(', ')}${large ? `; at the 1M passes ${large.load.map((l) => l.toFixed(1)).join(', ')}` : ''} (${os.cpus().length} cores). Whole bench ${result.conditions.benchSeconds.toFixed(0)} s.`,
    '',
    '| run | time | documents/s | peak RSS (before the pass) | phase A / B |',
    '|---|---|---|---|---|',
    row(
      `${DOCS}: baseline, read the state topic to its end + stream the sink's documents, no diff (median of ${BENCH_RUNS}: ${runs(baselines)} s)`,
      baseline,
      DOCS,
    ),
    row(
      `${DOCS}: reconcile, no drift (median of ${BENCH_RUNS}: ${runs(cleans)} s)`,
      clean,
      DOCS,
      ` (target ≥ ${TARGETS.cleanDocumentsPerSecond})`,
    ),
    row(
      `${DOCS}: reconcile, 1 % missing (${injected} documents; ${drifted.report!.stats.differing_buckets}/${drifted.report!.stats.buckets} buckets in detail; median of ${BENCH_RUNS}: ${runs(drifts)} s)`,
      drifted,
      DOCS,
      ` (target ≥ ${TARGETS.driftDocumentsPerSecond})`,
    ),
    ...(large
      ? [
          row(
            `${LARGE_DOCS}: reconcile, no drift`,
            large.clean,
            LARGE_DOCS,
            ` (target ≤ ${TARGETS.largeSeconds} s, ≤ ${TARGETS.largeMaxRssMiB} MiB)`,
          ),
          row(
            `${LARGE_DOCS}: reconcile, 1 % missing (${large.injected} documents; ${large.drift.report!.stats.differing_buckets}/${large.drift.report!.stats.buckets} buckets in detail)`,
            large.drift,
            LARGE_DOCS,
          ),
        ]
      : []),
    '',
    `Drift pass / clean pass at ${DOCS}: ${ratio.toFixed(2)} × (median of the rounds' ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}; target ≤ ${TARGETS.driftOverClean}). Clean pass / baseline: ${(clean.seconds / baseline.seconds).toFixed(2)} ×. State-topic key table: ${mib(clean.report!.stats.state_table_bytes).toFixed(1)} MiB for ${clean.report!.stats.state_keys} keys${large ? `, ${mib(large.clean.report!.stats.state_table_bytes).toFixed(1)} MiB for ${large.clean.report!.stats.state_keys}` : ''}. Peak RSS is the reconciling child's getrusage maxRSS${large?.clean.vmHwmMiB ? ` (VmHWM agrees: ${large.clean.vmHwmMiB.toFixed(0)} MiB at 1M)` : ''}.`,
    '',
  ].join('\n');
  await writeFile(path.join(RESULTS, `${stamp}-reconcile.md`), md);
  say(`\n${md}\nwritten to bench/results/${stamp}-reconcile.{json,md}`);
}

// `node --import tsx bench/reconcile.ts` runs the benchmark; `--child <mode> <setup>` is one measured
// run; `--seed <documents>` seeds a data set and prints its setup (for profiling a child by hand);
// `--cleanup <setup>` removes a data set kept with BENCH_RECONCILE_KEEP=1 or seeded with `--seed`.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--child');
  const cleanupAt = process.argv.indexOf('--cleanup');
  if (at >= 0) {
    const mode = process.argv[at + 1] as 'baseline' | 'reconcile';
    const setup = JSON.parse(process.argv[at + 2]!) as BenchSetup;
    const result = await child(mode, setup);
    process.stdout.write(JSON.stringify(result) + '\n');
  } else if (process.argv.includes('--seed')) {
    const setup = newSetup(Number(process.argv[process.argv.indexOf('--seed') + 1]));
    await ensureStack(benchConfig(setup));
    await seedTimed(benchConfig(setup), setup);
    process.stdout.write(JSON.stringify(setup) + '\n');
  } else if (cleanupAt >= 0) {
    const setup = JSON.parse(process.argv[cleanupAt + 1]!) as BenchSetup;
    await cleanup(benchConfig(setup), setup);
  } else {
    await runReconcileBench();
  }
  process.exit(0);
}
