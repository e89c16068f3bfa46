/**
 * Reconciler benchmark: one full reconcile pass over 100,000 documents (BENCH_RECONCILE_DOCS),
 * timed and with its peak resident memory, against a baseline measured in the same run.
 *
 * The data is seeded directly, so the benchmark measures the reconciler, not the pipeline:
 * - source: documents and ACLs inserted with `session_replication_role = replica` (no trigger, so no
 *   outbox event), ledger rows inserted for a dedicated sink name and model key;
 * - sink: the model's chunk table created by the pgvector sink for a dedicated 4-dimension model
 *   key, its HNSW index dropped (the reconciler never searches), chunks and ACL rows inserted with
 *   INSERT ... SELECT (1 or 2 chunks per document);
 * - state topic: a dedicated compacted topic, one state message per document plus older states
 *   of 10 % of them first (so "latest per key" has work to do).
 * Everything is removed afterwards.
 *
 * Each measured run is a child process (so its peak RSS is its own):
 * 1. baseline: read the state topic to its end and stream every sink document, nothing else;
 * 2. reconcile, clean: a full pass (BENCH_RECONCILE_RUNS times, alternating with the baseline; the
 *    medians are reported);
 * 3. reconcile with 1 % of the documents missing from the sink (drill-down cost).
 * Results go to bench/results/<date>-reconcile.{json,md}.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
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

const HERE = fileURLToPath(import.meta.url);
const RESULTS = path.join(path.dirname(HERE), 'results');
const DOCS = Number(process.env.BENCH_RECONCILE_DOCS ?? 100_000);
const TENANTS = Number(process.env.BENCH_RECONCILE_TENANTS ?? 10);
const DUPLICATE_EVERY = 10; // one document in ten also has an older state earlier in the topic
const TARGET_DOCS_PER_SECOND = 20_000;
const BENCH_RUNS = Number(process.env.BENCH_RECONCILE_RUNS ?? 3);

interface BenchSetup {
  run: string;
  sinkName: string;
  topicPrefix: string;
  modelKey: string;
  dimensions: number;
  tenants: string[];
}

interface ChildResult {
  seconds: number;
  /** Peak resident set of the child process (MiB). */
  maxRssMiB: number;
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

const mib = (bytes: number) => bytes / 2 ** 20;

// ---------------------------------------------------------------------------------------------
// Child: one measured run
// ---------------------------------------------------------------------------------------------

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
    let result: Omit<ChildResult, 'seconds' | 'maxRssMiB' | 'startRssMiB' | 'heapUsedMiB'>;
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
      startRssMiB: mib(startRss),
      heapUsedMiB: mib(process.memoryUsage().heapUsed),
    };
  } finally {
    await sink.close();
    await source.end();
  }
}

async function runChild(mode: 'baseline' | 'reconcile', setup: BenchSetup): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', HERE, '--child', mode, JSON.stringify(setup)],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
}

// ---------------------------------------------------------------------------------------------
// Seeding and cleanup
// ---------------------------------------------------------------------------------------------

/** The same deterministic rows on every side: document i of tenant i % TENANTS. */
const SERIES = `FROM generate_series(0, $1::int - 1) AS i`;
const TENANT = `$2 || (i % $3)`;
const DOCUMENT = `'doc-' || lpad(i::text, 7, '0')`;
const VERSION = `(1 + i % 5)`;
const ACL_VERSION = `(1 + i % 3)`;
const CHUNKS = `(CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END)`;
const ACL = `ARRAY['group:g' || (i % 20), 'user:u' || i]`;

async function seed(config: Config, setup: BenchSetup, tenantPrefix: string): Promise<void> {
  const source = new pg.Client({ connectionString: config.sourceUrl });
  await source.connect();
  try {
    await source.query('BEGIN');
    // No trigger fires: no outbox event, no state row, versions as given.
    await source.query(`SET LOCAL session_replication_role = replica`);
    const args = [DOCS, tenantPrefix, TENANTS];
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
       SELECT $4, ${TENANT}, ${DOCUMENT}, $5, ${VERSION}, ${ACL_VERSION}, ${ACL}, ${CHUNKS}, 'bench', false, now() ${SERIES}`,
      [...args, setup.sinkName, setup.modelKey],
    );
    await source.query('COMMIT');
  } finally {
    await source.end();
  }

  const sink = await createSink(config);
  const index = { modelKey: setup.modelKey, dimensions: setup.dimensions };
  await sink.ensureIndex(index);
  await sink.close();
  const names = chunkTableNames(setup.modelKey);
  const vectors = new pg.Client({ connectionString: config.sink.pgvector.url });
  await vectors.connect();
  try {
    await vectors.query(`DROP INDEX IF EXISTS vecsync_sink.${pg.escapeIdentifier(names.hnswIndex)}`);
    const args = [DOCS, tenantPrefix, TENANTS, setup.sinkName, setup.modelKey];
    await vectors.query(
      `INSERT INTO ${names.qualified} (sink_name, id, tenant_id, document_id, chunk_index, document_version, content_hash, model_key, title, metadata, content, embedding)
       SELECT $4, ${TENANT} || ':' || ${DOCUMENT} || '#' || c, ${TENANT}, ${DOCUMENT}, c, ${VERSION}, 'h', $5, 'Title', '{}', 'chunk', '[1,2,3,4]'
         ${SERIES} CROSS JOIN LATERAL generate_series(0, ${CHUNKS} - 1) AS c`,
      args,
    );
    await vectors.query(
      `INSERT INTO vecsync_sink.document_acl (sink_name, tenant_id, document_id, acl, acl_version, document_version)
       SELECT $4, ${TENANT}, ${DOCUMENT}, ${ACL}, ${ACL_VERSION}, ${VERSION} ${SERIES}`,
      args.slice(0, 4),
    );
    await vectors.query(`ANALYZE ${names.qualified}`);
  } finally {
    await vectors.end();
  }

  const log = createLogger('warn', 'bench-reconcile');
  const kafka = createKafka(config.kafkaBrokers, `bench-reconcile-${setup.run}`, log);
  const topic = topicsFor(setup.topicPrefix).state;
  await provisionTopics(kafka, [{ topic, partitions: 6, configs: { 'cleanup.policy': 'compact' } }]);
  const producer = await createProducer(kafka);
  try {
    const state = (i: number, older: boolean) => {
      const version = 1 + (i % 5);
      return {
        key: `${tenantPrefix}${i % TENANTS}:doc-${String(i).padStart(7, '0')}`,
        value: JSON.stringify({
          tenant_id: `${tenantPrefix}${i % TENANTS}`,
          document_id: `doc-${String(i).padStart(7, '0')}`,
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
    const send = async (indexes: number[], older: boolean) => {
      for (let at = 0; at < indexes.length; at += 5_000) {
        await producer.send(
          topic,
          indexes.slice(at, at + 5_000).map((i) => state(i, older)),
        );
      }
    };
    const all = Array.from({ length: DOCS }, (_, i) => i);
    await send(
      all.filter((i) => i % DUPLICATE_EVERY === 0),
      true,
    );
    await send(all, false);
  } finally {
    await producer.close();
  }
}

async function injectMissing(config: Config, setup: BenchSetup, tenantPrefix: string): Promise<number> {
  const vectors = new pg.Client({ connectionString: config.sink.pgvector.url });
  await vectors.connect();
  try {
    // One document in a hundred, spread over every tenant by a hash of its id.
    const res = await vectors.query<{ document_id: string; tenant_id: string }>(
      `DELETE FROM ${chunkTableNames(setup.modelKey).qualified}
        WHERE sink_name = $1 AND tenant_id LIKE $2 AND abs(hashtext(document_id)) % 100 = 0
        RETURNING tenant_id, document_id`,
      [setup.sinkName, `${tenantPrefix}%`],
    );
    const documents = new Set(res.rows.map((r) => `${r.tenant_id}:${r.document_id}`)).size;
    if (documents === 0) throw new Error('nothing deleted');
    return documents;
  } finally {
    await vectors.end();
  }
}

async function cleanup(config: Config, setup: BenchSetup): Promise<void> {
  const source = new pg.Client({ connectionString: config.sourceUrl });
  await source.connect();
  try {
    await source.query('BEGIN');
    await source.query(`SET LOCAL session_replication_role = replica`);
    await source.query(`DELETE FROM vecsync.document_acl WHERE tenant_id = ANY($1)`, [setup.tenants]);
    await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = ANY($1)`, [setup.tenants]);
    await source.query(`DELETE FROM vecsync.sync_state WHERE sink_name = $1`, [setup.sinkName]);
    await source.query('COMMIT');
  } finally {
    await source.end();
  }
  const vectors = new pg.Client({ connectionString: config.sink.pgvector.url });
  await vectors.connect();
  try {
    await vectors.query(`DROP TABLE IF EXISTS ${chunkTableNames(setup.modelKey).qualified}`);
    await vectors.query(`DELETE FROM vecsync_sink.document_acl WHERE sink_name = $1`, [setup.sinkName]);
  } finally {
    await vectors.end();
  }
  await withAdmin(config.kafkaBrokers, (admin) => admin.deleteTopics({ topics: [topicsFor(setup.topicPrefix).state] }));
}

// ---------------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------------

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function runReconcileBench(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const tenantPrefix = `rbench_${run}_t`;
  const setup: BenchSetup = {
    run,
    sinkName: `rb_${run}`,
    topicPrefix: `bench-reconcile-${run}`,
    modelKey: `rbench-${run}.v1`,
    dimensions: 4,
    tenants: Array.from({ length: TENANTS }, (_, t) => `${tenantPrefix}${t}`),
  };
  const config = benchConfig(setup);
  await ensureStack(config);
  try {
    process.stdout.write(
      `reconcile: seeding ${DOCS} documents over ${TENANTS} tenants (source, ledger, sink, state topic)...\n`,
    );
    const seedStart = performance.now();
    await seed(config, setup, tenantPrefix);
    process.stdout.write(`  seeded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s\n`);

    // Baseline and reconcile runs alternate, so a burst of load on this shared machine hits both.
    process.stdout.write(
      `${BENCH_RUNS} × (baseline: read the state topic to its end and stream every sink document; reconcile, no drift)...\n`,
    );
    const baselines: ChildResult[] = [];
    const cleans: ChildResult[] = [];
    const load: number[] = [];
    for (let i = 0; i < BENCH_RUNS; i++) {
      load.push(os.loadavg()[0]!);
      baselines.push(await runChild('baseline', setup));
      cleans.push(await runChild('reconcile', setup));
      const [b, c] = [baselines[i]!, cleans[i]!];
      process.stdout.write(
        `  run ${i + 1}: baseline ${b.seconds.toFixed(2)} s, reconcile ${c.seconds.toFixed(2)} s (load average ${load[i]!.toFixed(1)})\n`,
      );
    }
    const baseline = baselines.find((b) => b.seconds === median(baselines.map((x) => x.seconds)))!;
    const clean = cleans.find((c) => c.seconds === median(cleans.map((x) => x.seconds)))!;
    const drift = clean.report!.drift;
    if (cleans.some((c) => Object.values(c.report!.drift).some((n) => n !== 0))) {
      throw new Error(`clean bench data reported drift: ${JSON.stringify(drift)}`);
    }
    process.stdout.write(
      `  baseline ${baseline.seconds.toFixed(2)} s (median), peak RSS ${baseline.maxRssMiB.toFixed(0)} MiB; ${baseline.baseline?.stateMessages} messages, ${baseline.baseline?.sinkDocuments} sink documents\n`,
    );
    process.stdout.write(
      `  reconcile ${clean.seconds.toFixed(2)} s (median) = ${(DOCS / clean.seconds).toFixed(0)} documents/s, peak RSS ${clean.maxRssMiB.toFixed(0)} MiB (${clean.startRssMiB.toFixed(0)} MiB before the pass)\n`,
    );

    process.stdout.write('reconcile, 1 % of the documents missing from the sink (drill-down)...\n');
    const injected = await injectMissing(config, setup, tenantPrefix);
    const drifted = await runChild('reconcile', setup);
    if (drifted.report!.drift.missing !== injected) {
      throw new Error(`expected ${injected} missing, got ${JSON.stringify(drifted.report!.drift)}`);
    }
    process.stdout.write(
      `  ${drifted.seconds.toFixed(2)} s = ${(DOCS / drifted.seconds).toFixed(0)} documents/s, peak RSS ${drifted.maxRssMiB.toFixed(0)} MiB; found ${injected} missing, ${drifted.report!.stats.differing_buckets} of ${drifted.report!.stats.buckets} buckets read in detail\n`,
    );

    const pgVersion = await (async () => {
      const c = new pg.Client({ connectionString: config.sourceUrl });
      await c.connect();
      try {
        return (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
      } finally {
        await c.end();
      }
    })();
    const result = {
      date: new Date().toISOString(),
      conditions: {
        cpu: os.cpus()[0]?.model,
        cores: os.cpus().length,
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        postgres: pgVersion,
        documents: DOCS,
        tenants: TENANTS,
        chunksPerDocument: '1 (2 for every third document)',
        principalsPerDocument: 2,
        stateMessages: DOCS + Math.ceil(DOCS / DUPLICATE_EVERY),
        statePartitions: 6,
        settleMs: 0,
        loadAverage1m: load,
        note: 'PostgreSQL (source and sink databases), Kafka and the reconciler on this one machine; each measured run is its own process',
      },
      baseline: { ...baseline, runs: baselines.map((b) => b.seconds) },
      clean: { ...clean, documentsPerSecond: DOCS / clean.seconds, runs: cleans.map((c) => c.seconds) },
      drift1pct: { ...drifted, documentsPerSecond: DOCS / drifted.seconds, injectedMissing: injected },
      ratioToBaseline: clean.seconds / baseline.seconds,
      targets: { documentsPerSecond: TARGET_DOCS_PER_SECOND },
    };
    await mkdir(RESULTS, { recursive: true });
    const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
    await writeFile(path.join(RESULTS, `${stamp}-reconcile.json`), JSON.stringify(result, null, 2) + '\n');
    const md = [
      `# Reconcile benchmark, ${result.date}`,
      '',
      `Conditions: ${result.conditions.cores} × ${result.conditions.cpu}, ${result.conditions.memoryGiB} GiB, Node ${result.conditions.node}, PostgreSQL ${pgVersion}; ${DOCS} documents over ${TENANTS} tenants, ${result.conditions.chunksPerDocument} chunks and 2 principals per document, ${result.conditions.stateMessages} state messages (10 % of the keys twice) in 6 partitions; ${result.conditions.note}.`,
      '',
      '| run | time | documents/s | peak RSS (before the run) |',
      '|---|---|---|---|',
      `| baseline: read the state topic to its end + stream the sink's documents, no diff (median of ${BENCH_RUNS}: ${baselines.map((b) => b.seconds.toFixed(2)).join(', ')} s) | ${baseline.seconds.toFixed(2)} s | ${(DOCS / baseline.seconds).toFixed(0)} | ${baseline.maxRssMiB.toFixed(0)} MiB (${baseline.startRssMiB.toFixed(0)} MiB) |`,
      `| reconcile, no drift (median of ${BENCH_RUNS}: ${cleans.map((c) => c.seconds.toFixed(2)).join(', ')} s) | ${clean.seconds.toFixed(2)} s | ${(DOCS / clean.seconds).toFixed(0)} (target ≥ ${TARGET_DOCS_PER_SECOND}) | ${clean.maxRssMiB.toFixed(0)} MiB (${clean.startRssMiB.toFixed(0)} MiB) |`,
      `| reconcile, 1 % missing (${injected} documents; ${drifted.report!.stats.differing_buckets}/${drifted.report!.stats.buckets} buckets in detail) | ${drifted.seconds.toFixed(2)} s | ${(DOCS / drifted.seconds).toFixed(0)} | ${drifted.maxRssMiB.toFixed(0)} MiB (${drifted.startRssMiB.toFixed(0)} MiB) |`,
      '',
      `Reconcile / baseline: ${(result.ratioToBaseline * 100).toFixed(0)} % of the time of reading the inputs alone (the reconciler also reads the source and the ledger, in parallel). State-topic key table: ${mib(clean.report!.stats.state_table_bytes).toFixed(1)} MiB for ${clean.report!.stats.state_keys} keys; phase A ${clean.report!.stats.phase_a_ms} ms, phase B ${clean.report!.stats.phase_b_ms} ms. Load average (1 min) at each run: ${load.map((l) => l.toFixed(1)).join(', ')} on ${os.cpus().length} cores shared with other work.`,
      '',
    ].join('\n');
    await writeFile(path.join(RESULTS, `${stamp}-reconcile.md`), md);
    process.stdout.write(`\n${md}\nwritten to bench/results/${stamp}-reconcile.{json,md}\n`);
  } finally {
    // BENCH_RECONCILE_KEEP=1 leaves the data in place (for profiling); remove it by hand afterwards.
    if (process.env.BENCH_RECONCILE_KEEP === '1') {
      process.stdout.write(`kept (BENCH_RECONCILE_KEEP=1): ${JSON.stringify(setup)}\n`);
    } else {
      await cleanup(config, setup).catch((error: unknown) =>
        process.stderr.write(`reconcile bench cleanup failed: ${String(error)}\n`),
      );
    }
  }
}

// `node --import tsx bench/reconcile.ts` runs the benchmark; `--child <mode> <setup>` is one measured run.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--child');
  if (at >= 0) {
    const mode = process.argv[at + 1] as 'baseline' | 'reconcile';
    const setup = JSON.parse(process.argv[at + 2]!) as BenchSetup;
    const result = await child(mode, setup);
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    await runReconcileBench();
  }
  process.exit(0);
}
