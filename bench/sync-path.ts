/**
 * Core sync path benchmark (`npm run bench`).
 *
 * 1. Throughput: documents committed to PostgreSQL in bulk, measured until every chunk is applied
 *    in pgvector (outbox → Debezium → Kafka → embedder → Avro → writer → HNSW-indexed table).
 * 2. Baseline, in the same run: a bare COPY of the same vectors into an identical HNSW-indexed
 *    table holding the same rows beforehand, the physical limit of the sink on this machine.
 * 3. Freshness at a fixed rate: single-document transactions at 100 documents/s; per document,
 *    outbox created_at (commit) → ledger applied_at (after the sink acknowledged), both read from
 *    the database clock.
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

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const DOCS = Number(process.env.BENCH_DOCS ?? 3000);
const RATE = Number(process.env.BENCH_RATE ?? 100);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 30);

function retenant(docs: DemoDocument[], run: string): DemoDocument[] {
  return docs.map((d) => ({ ...d, tenant_id: `bench_${run}_${d.tenant_id.replace('demo-', '')}` }));
}

async function waitApplied(p: TestPipeline, tenants: string[], expected: number, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const res = await p.source.query<{ n: string }>(
        `SELECT count(*) AS n FROM vecsync.documents d JOIN vecsync.sync_state s
           ON s.tenant_id = d.tenant_id AND s.document_id = d.document_id AND s.sink_name = $2 AND s.model_key = $3
          WHERE d.tenant_id = ANY($1) AND s.version = d.version`,
        [tenants, p.config.sink.name, p.rt.activeIndex.modelKey],
      );
      return Number(res.rows[0]!.n) >= expected;
    },
    { timeoutMs, intervalMs: 100, description: `${expected} documents applied` },
  );
}

async function throughput(p: TestPipeline, run: string) {
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
      WHERE s.sink_name = $1 AND s.tenant_id = ANY($2)`,
    [p.config.sink.name, tenants],
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

async function freshness(p: TestPipeline, run: string) {
  const tenant = `bench_${run}_fresh`;
  const corpus = generateCorpus(RATE * RATE_SECONDS, 11).map((d, i) => ({
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
      WHERE s.sink_name = $1 AND s.tenant_id = $2`,
    [p.config.sink.name, tenant],
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
  };
}

export async function runSyncPathBench(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const p = await startPipeline(`bench-${run}`);
  try {
    process.stdout.write(`throughput: ${DOCS} documents, bulk commit...\n`);
    const tp = await throughput(p, run);
    process.stdout.write(
      `  ${tp.chunks} chunks in ${tp.seconds.toFixed(2)} s = ${tp.chunksPerSecond.toFixed(0)} chunks/s (${tp.documentsPerSecond.toFixed(0)} documents/s)\n`,
    );
    process.stdout.write('baseline: bare COPY of the same vectors into an identical HNSW-indexed table...\n');
    const copy = await bareCopy(p, run, tp.tenants);
    process.stdout.write(
      `  ${copy.rows} rows in ${copy.seconds.toFixed(2)} s = ${copy.chunksPerSecond.toFixed(0)} chunks/s (table held ${copy.priorRows} rows before)\n`,
    );
    process.stdout.write(`freshness: ${RATE} documents/s for ${RATE_SECONDS} s, one transaction each...\n`);
    const fr = await freshness(p, run);
    process.stdout.write(
      `  p50 ${fr.p50Ms.toFixed(0)} ms, p90 ${fr.p90Ms.toFixed(0)} ms, p99 ${fr.p99Ms.toFixed(0)} ms, max ${fr.maxMs.toFixed(0)} ms (offered ${fr.offeredRate.toFixed(1)} documents/s)\n`,
    );
    const ratio = tp.chunksPerSecond / copy.chunksPerSecond;
    const pgVersion = (await p.source.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    const result = {
      date: new Date().toISOString(),
      conditions: {
        cpu: os.cpus()[0]?.model,
        cores: os.cpus().length,
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        postgres: pgVersion,
        embedder: `${p.config.embedder.type} ${p.config.embedder.dimensions} dims`,
        chunking: p.config.chunking,
        hnsw: { m: 16, ef_construction: 64, ops: 'vector_cosine_ops' },
        lanePartitions: 6,
        note: 'everything (PostgreSQL, Kafka, Connect, registry, services, load generator) on this one machine',
      },
      throughput: { ...tp, tenants: undefined },
      baselineCopy: copy,
      ratioToCopy: ratio,
      freshness: fr,
      targets: { ratioToCopy: 0.7, freshnessP99Ms: 1000 },
    };
    await mkdir(RESULTS, { recursive: true });
    const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
    await writeFile(path.join(RESULTS, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
    const md = [
      `# Sync path benchmark, ${result.date}`,
      '',
      `Conditions: ${result.conditions.cores} × ${result.conditions.cpu}, ${result.conditions.memoryGiB} GiB, Node ${result.conditions.node}, PostgreSQL ${pgVersion} + pgvector, ${result.conditions.embedder}, chunk size ${p.config.chunking.size}/${p.config.chunking.overlap}, HNSW m=16 ef_construction=64, 6 partitions per lane; ${result.conditions.note}.`,
      '',
      '| measure | value |',
      '|---|---|',
      `| end to end (commit → visible in pgvector) | ${tp.chunksPerSecond.toFixed(0)} chunks/s, ${tp.documentsPerSecond.toFixed(0)} documents/s (${tp.chunks} chunks, ${tp.documents} documents, ${tp.seconds.toFixed(2)} s) |`,
      `| baseline: bare COPY into the same HNSW-indexed table | ${copy.chunksPerSecond.toFixed(0)} chunks/s (${copy.rows} rows, ${copy.seconds.toFixed(2)} s, ${copy.priorRows} rows already in the table) |`,
      `| end to end / COPY | ${(ratio * 100).toFixed(0)} % (target ≥ 70 %) |`,
      `| freshness at ${RATE} documents/s (${fr.documents} documents) | p50 ${fr.p50Ms.toFixed(0)} ms, p90 ${fr.p90Ms.toFixed(0)} ms, p99 ${fr.p99Ms.toFixed(0)} ms, max ${fr.maxMs.toFixed(0)} ms (target p99 ≤ 1000 ms) |`,
      '',
    ].join('\n');
    await writeFile(path.join(RESULTS, `${stamp}.md`), md);
    process.stdout.write(`\n${md}\nwritten to bench/results/${stamp}.{json,md}\n`);
  } finally {
    await p.stop();
  }
}
