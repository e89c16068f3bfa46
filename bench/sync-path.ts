/**
 * Core sync path benchmark (`npm run bench`).
 *
 * 1. Throughput: documents committed to PostgreSQL in bulk, measured until every chunk is applied
 *    in pgvector (outbox → Debezium → Kafka → embedder → Avro → writer → HNSW-indexed table).
 * 2. Baseline, in the same run: a bare COPY of the same vectors into an identical HNSW-indexed
 *    table holding the same rows beforehand, the physical limit of the sink on this machine.
 *    Both alternate for BENCH_ROUNDS rounds (default 3); the ratio is the median of the rounds.
 * 3. Freshness at a fixed rate: single-document transactions at 100 documents/s; per document,
 *    outbox created_at (commit) → ledger applied_at (after the sink acknowledged), both read from
 *    the database clock, split into hops from the Kafka record timestamps and the runner's slice
 *    timing (commit → Kafka → embedder → chunk topic → writer → sink commit).
 * Around each phase, the CPU each stack component used (bench/cpu.ts), to show what bounds it.
 *
 * Results go to bench/results/<date>.json and .md.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { generateCorpus, type DemoDocument } from '../services/ops/demo/corpus.ts';
import { writeDocuments } from '../services/ops/demo/index.ts';
import { chunkTableName } from '../services/adapters/sinks/pgvector/naming.ts';
import { startPipeline, type TestPipeline } from '../test/support/pipeline.ts';
import { waitFor } from '../test/support/wait.ts';
import { percentile } from '../services/domain/percentile.ts';
import { createdAtMs } from '../services/adapters/kafka/message.ts';
import { cpuSnapshot, cpuUsage, formatCpuUsage, loadAverage, machine, type CpuUsage } from './cpu.ts';
import { formatPgWork, pgWork } from './pgstats.ts';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const DOCS = Number(process.env.BENCH_DOCS ?? 3000);
const RATE = Number(process.env.BENCH_RATE ?? 100);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 30);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Spread {
  p50: number;
  p99: number;
  mean: number;
}

function spread(values: number[]): Spread {
  return {
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length),
  };
}

/**
 * The freshness of each document split into hops (ms). The broker timestamps are set by the
 * producer on this machine (Connect for the lane, the embedder for the chunk topic), so every
 * clock here is the same one.
 */
function hops(p: TestPipeline, tenant: string): Record<string, Spread> {
  const mine = (key: string | null) => key?.startsWith(`${tenant}:`) ?? false;
  const capture: number[] = [];
  const embedderWait: number[] = [];
  const embedderHandle: number[] = [];
  const embedderCommit: number[] = [];
  for (const c of p.committed.embedder) {
    if (!mine(c.message.key) || c.outcome.kind !== 'done') continue;
    const created = createdAtMs(c.message);
    if (created !== undefined) capture.push(c.message.timestamp - created);
    embedderWait.push(c.timing.startedAt - c.message.timestamp);
    embedderHandle.push(c.timing.handledAt - c.timing.startedAt);
    embedderCommit.push(c.timing.committedAt - c.timing.handledAt);
  }
  const writerWait: number[] = [];
  const writerHandle: number[] = [];
  const writerCommit: number[] = [];
  for (const c of p.committed.writer) {
    if (!mine(c.message.key) || c.outcome.kind !== 'done') continue;
    writerWait.push(c.timing.startedAt - c.message.timestamp);
    writerHandle.push(c.timing.handledAt - c.timing.startedAt);
    writerCommit.push(c.timing.committedAt - c.timing.handledAt);
  }
  return {
    'commit → lane record (Debezium)': spread(capture),
    'lane record → embedder slice start (fetch wait)': spread(embedderWait),
    'embedder slice (decode, embed, produce chunk record)': spread(embedderHandle),
    'embedder offset commit': spread(embedderCommit),
    'chunk record → writer slice start (fetch wait)': spread(writerWait),
    'writer slice (decode, sink write, ledger)': spread(writerHandle),
    'writer offset commit': spread(writerCommit),
  };
}

export async function measured<T>(work: () => Promise<T>): Promise<{ value: T; cpu: CpuUsage }> {
  const before = await cpuSnapshot();
  const value = await work();
  return { value, cpu: cpuUsage(before, await cpuSnapshot()) };
}

function retenant(docs: DemoDocument[], run: string): DemoDocument[] {
  return docs.map((d) => ({ ...d, tenant_id: `bench_${run}_${d.tenant_id.replace('demo-', '')}` }));
}

/** Where a run writes and what it reads back: the source, and the sink name and model of the writers. */
export interface SyncTarget {
  source: pg.Pool;
  sinkName: string;
  modelKey: string;
}

function targetOf(p: TestPipeline): SyncTarget {
  return { source: p.source, sinkName: p.config.sink.name, modelKey: p.rt.activeIndex.modelKey };
}

async function waitApplied(p: SyncTarget, tenants: string[], expected: number, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const res = await p.source.query<{ n: string }>(
        `SELECT count(*) AS n FROM vecsync.documents d JOIN vecsync.sync_state s
           ON s.tenant_id = d.tenant_id AND s.document_id = d.document_id AND s.sink_name = $2 AND s.model_key = $3
          WHERE d.tenant_id = ANY($1) AND s.version = d.version`,
        [tenants, p.sinkName, p.modelKey],
      );
      return Number(res.rows[0]!.n) >= expected;
    },
    { timeoutMs, intervalMs: 100, description: `${expected} documents applied` },
  );
}

export async function throughput(p: SyncTarget, run: string) {
  const corpus = retenant(generateCorpus(DOCS, 7), run);
  const tenants = [...new Set(corpus.map((d) => d.tenant_id))];
  const started = Date.now();
  for (let i = 0; i < corpus.length; i += 500) await writeDocuments(p.source, corpus.slice(i, i + 500));
  const committedMs = Date.now() - started;
  await waitApplied(p, tenants, corpus.length, 900_000);
  const span = await p.source.query<{ seconds: number; chunks: string }>(
    `SELECT extract(epoch FROM max(s.applied_at) - min(o.created_at))::float8 AS seconds, sum(s.chunk_count) AS chunks
       FROM vecsync.sync_state s
       JOIN vecsync.vector_sync_outbox o ON o.tenant_id = s.tenant_id AND o.document_id = s.document_id AND o.lane = 'live'
        AND o.embedding_model || '.v' || o.embedding_version = s.model_key
      WHERE s.sink_name = $1 AND s.tenant_id = ANY($2) AND s.model_key = $3`,
    [p.sinkName, tenants, p.modelKey],
  );
  const seconds = span.rows[0]!.seconds;
  const chunks = Number(span.rows[0]!.chunks);
  return {
    documents: corpus.length,
    chunks,
    seconds,
    chunksPerSecond: chunks / seconds,
    documentsPerSecond: corpus.length / seconds,
    commitSeconds: committedMs / 1000,
    tenants,
  };
}

/** COPY of the pipeline's own rows into a fresh copy of the model table with the same prior content. */
async function bareCopy(p: TestPipeline, run: string, tenants: string[]) {
  const sinkPool = new pg.Pool({ connectionString: p.config.sink.pgvector.url, max: 2 });
  const table = `vecsync_sink.${chunkTableName(p.rt.activeIndex.modelKey)}`;
  const copyTable = `vecsync_sink.bench_copy_${run}`;
  const client = await sinkPool.connect();
  try {
    await client.query(`CREATE TABLE ${copyTable} (LIKE ${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    // The pipeline wrote into a table that already held every other sink's rows: give the
    // baseline the same starting point (loaded before its index is built, untimed).
    await client.query(`INSERT INTO ${copyTable} SELECT * FROM ${table} WHERE sink_name <> $1`, [p.config.sink.name]);
    const prior = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${copyTable}`)).rows[0]!.n);
    await client.query(
      `CREATE INDEX ON ${copyTable} USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`,
    );
    await client.query(`CREATE UNIQUE INDEX ON ${copyTable} (sink_name, id)`);
    // The rows to load, exported once (untimed): exactly what the pipeline applied.
    const chunks: Buffer[] = [];
    const out = client.query(
      copyTo(
        `COPY (SELECT * FROM ${table} WHERE sink_name = '${p.config.sink.name}' AND tenant_id IN (${tenants.map((t) => `'${t}'`).join(',')})) TO STDOUT`,
      ),
    );
    for await (const chunk of out) chunks.push(chunk as Buffer);
    const payload = Buffer.concat(chunks);
    const rows = payload
      .toString('utf8')
      .split('\n')
      .filter((l) => l.length > 0).length;
    const t0 = performance.now();
    await pipeline(Readable.from([payload]), client.query(copyFrom(`COPY ${copyTable} FROM STDIN`)));
    const seconds = (performance.now() - t0) / 1000;
    return { rows, priorRows: prior, seconds, chunksPerSecond: rows / seconds };
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${copyTable}`).catch(() => undefined);
    client.release();
    await sinkPool.end();
  }
}

/** `RATE` single-document transactions per second for `RATE_SECONDS`; commit → applied per document. */
export async function freshness(p: SyncTarget, run: string, seconds = RATE_SECONDS) {
  const tenant = `bench_${run}_fresh`;
  const corpus = generateCorpus(RATE * seconds, 11).map((d, i) => ({
    ...d,
    tenant_id: tenant,
    document_id: `f-${i}`,
  }));
  const interval = 1000 / RATE;
  const t0 = performance.now();
  let lateTicks = 0;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < corpus.length; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else if (wait < -interval) lateTicks++;
    inflight.push(writeDocuments(p.source, [corpus[i]!]));
  }
  await Promise.all(inflight);
  const offeredRate = corpus.length / ((performance.now() - t0) / 1000);
  await waitApplied(p, [tenant], corpus.length, 300_000);
  const res = await p.source.query<{ ms: number }>(
    `SELECT extract(epoch FROM s.applied_at - o.created_at)::float8 * 1000 AS ms
       FROM vecsync.sync_state s
       JOIN vecsync.vector_sync_outbox o ON o.tenant_id = s.tenant_id AND o.document_id = s.document_id AND o.lane = 'live'
        AND o.embedding_model || '.v' || o.embedding_version = s.model_key
      WHERE s.sink_name = $1 AND s.tenant_id = $2 AND s.model_key = $3`,
    [p.sinkName, tenant, p.modelKey],
  );
  const ms = res.rows.map((r) => r.ms);
  return {
    documents: ms.length,
    offeredRate,
    lateTicks,
    p50Ms: percentile(ms, 50),
    p90Ms: percentile(ms, 90),
    p99Ms: percentile(ms, 99),
    maxMs: Math.max(...ms),
    tenant,
  };
}

export async function runSyncPathBench(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const p = await startPipeline(`bench-${run}`);
  const loadBefore = loadAverage();
  try {
    const rounds = [];
    for (let r = 1; r <= ROUNDS; r++) {
      process.stdout.write(`round ${r}/${ROUNDS}: ${DOCS} documents, bulk commit...\n`);
      const counted = await pgWork(
        [p.config.sourceUrl, p.config.sink.pgvector.url],
        (v) => v.value.documents,
        () => measured(() => throughput(targetOf(p), `${run}r${r}`)),
      );
      const tp = counted.value;
      process.stdout.write(
        `  ${tp.value.chunks} chunks in ${tp.value.seconds.toFixed(2)} s = ${tp.value.chunksPerSecond.toFixed(0)} chunks/s (${tp.value.documentsPerSecond.toFixed(0)} documents/s)\n${formatCpuUsage(tp.cpu)}\n${formatPgWork(counted.pg)}\n`,
      );
      process.stdout.write('  baseline: bare COPY of the same vectors into an identical HNSW-indexed table...\n');
      const copy = await measured(() => bareCopy(p, `${run}r${r}`, tp.value.tenants));
      process.stdout.write(
        `  ${copy.value.rows} rows in ${copy.value.seconds.toFixed(2)} s = ${copy.value.chunksPerSecond.toFixed(0)} chunks/s (table held ${copy.value.priorRows} rows before)\n`,
      );
      const ratio = tp.value.chunksPerSecond / copy.value.chunksPerSecond;
      process.stdout.write(`  pipeline / COPY: ${(ratio * 100).toFixed(1)} %\n`);
      rounds.push({
        throughput: { ...tp.value, tenants: undefined },
        cpu: tp.cpu,
        postgres: counted.pg,
        baselineCopy: copy.value,
        ratio,
      });
    }
    const ratios = rounds.map((r) => r.ratio);
    const medianRatio = percentile(ratios, 50);
    process.stdout.write(`freshness: ${RATE} documents/s for ${RATE_SECONDS} s, one transaction each...\n`);
    const fresh = await measured(() => freshness(targetOf(p), run));
    const fr = { ...fresh.value, hops: hops(p, fresh.value.tenant) };
    process.stdout.write(
      `  p50 ${fr.p50Ms.toFixed(0)} ms, p90 ${fr.p90Ms.toFixed(0)} ms, p99 ${fr.p99Ms.toFixed(0)} ms, max ${fr.maxMs.toFixed(0)} ms (offered ${fr.offeredRate.toFixed(1)} documents/s)\n`,
    );
    for (const [hop, v] of Object.entries(fr.hops))
      process.stdout.write(
        `    ${hop}: p50 ${v.p50.toFixed(0)} ms, p99 ${v.p99.toFixed(0)} ms, mean ${v.mean.toFixed(1)} ms\n`,
      );
    process.stdout.write(`${formatCpuUsage(fresh.cpu)}\n`);
    const pgVersion = (await p.source.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    const result = {
      date: new Date().toISOString(),
      conditions: {
        ...machine(),
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        postgres: pgVersion,
        embedder: `${p.config.embedder.type} ${p.config.embedder.dimensions} dims`,
        chunking: p.config.chunking,
        hnsw: { m: 16, ef_construction: 64, ops: 'vector_cosine_ops' },
        lanePartitions: 6,
        rounds: ROUNDS,
        loadAverageBefore: loadBefore,
        loadAverageAfter: loadAverage(),
        note: 'everything (PostgreSQL, Kafka, Connect, registry, services, load generator) on this one machine',
      },
      rounds,
      medianRatioToCopy: medianRatio,
      freshness: fr,
      freshnessCpu: fresh.cpu,
      targets: { ratioToCopy: 0.9, freshnessP50Ms: 100, freshnessP99Ms: 500 },
    };
    await mkdir(RESULTS, { recursive: true });
    const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
    await writeFile(path.join(RESULTS, `${stamp}-sync.json`), JSON.stringify(result, null, 2) + '\n');
    const cpuRows = (usage: CpuUsage) =>
      usage.components
        .filter((c) => c.cpuSeconds >= 0.05)
        .map((c) => `${c.component} ${c.coresUsed.toFixed(2)}`)
        .join(', ');
    const md = [
      `# Sync path benchmark, ${result.date}`,
      '',
      `Conditions: ${result.conditions.cores} × ${result.conditions.cpu}, ${result.conditions.memoryGiB} GiB, Node ${result.conditions.node}, PostgreSQL ${pgVersion} + pgvector, ${result.conditions.embedder}, chunk size ${p.config.chunking.size}/${p.config.chunking.overlap}, HNSW m=16 ef_construction=64, 6 partitions per lane, load average ${loadBefore} before and ${result.conditions.loadAverageAfter} after; ${result.conditions.note}.`,
      '',
      '| round | end to end (commit → visible in pgvector) | bare COPY into the same HNSW-indexed table | ratio | cores used during the end-to-end run |',
      '|---|---|---|---|---|',
      ...rounds.map(
        (r, i) =>
          `| ${i + 1} | ${r.throughput.chunksPerSecond.toFixed(0)} chunks/s (${r.throughput.chunks} chunks, ${r.throughput.documents} documents, ${r.throughput.seconds.toFixed(2)} s) | ${r.baselineCopy.chunksPerSecond.toFixed(0)} chunks/s (${r.baselineCopy.seconds.toFixed(2)} s, ${r.baselineCopy.priorRows} rows already in the table) | ${(r.ratio * 100).toFixed(1)} % | ${cpuRows(r.cpu)}; machine ${(r.cpu.machineCpuSeconds / r.cpu.seconds).toFixed(2)} |`,
      ),
      '',
      `Median end to end / COPY over ${ROUNDS} rounds: ${(medianRatio * 100).toFixed(1)} % (target ≥ 90 %).`,
      '',
      `Freshness at ${RATE} documents/s (${fr.documents} documents, offered ${fr.offeredRate.toFixed(1)}/s): p50 ${fr.p50Ms.toFixed(0)} ms, p90 ${fr.p90Ms.toFixed(0)} ms, p99 ${fr.p99Ms.toFixed(0)} ms, max ${fr.maxMs.toFixed(0)} ms (target p50 ≤ 100 ms, p99 ≤ 500 ms). Cores used: ${cpuRows(fresh.cpu)}; machine ${(fresh.cpu.machineCpuSeconds / fresh.cpu.seconds).toFixed(2)}.`,
      '',
      '| hop | p50 ms | p99 ms | mean ms |',
      '|---|---|---|---|',
      ...Object.entries(fr.hops).map(
        ([hop, v]) => `| ${hop} | ${v.p50.toFixed(0)} | ${v.p99.toFixed(0)} | ${v.mean.toFixed(1)} |`,
      ),
      '',
    ].join('\n');
    await writeFile(path.join(RESULTS, `${stamp}-sync.md`), md);
    process.stdout.write(`\n${md}\nwritten to bench/results/${stamp}-sync.{json,md}\n`);
  } finally {
    await p.stop();
  }
}
