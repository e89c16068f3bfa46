/**
 * minilm benchmark: the raw model against the embedder service, on the same texts with the same
 * threads and batch size, in the same run; and the embedder process's memory with the model loaded.
 *
 * - Raw: `createMinilm` in this process embeds every distinct chunk text of the corpus, in calls
 *   of VECSYNC_EMBED_BATCH_SIZE texts (what the embedder service passes per call).
 * - Pipeline: `vecsync run embedder` (a child process, VECSYNC_EMBEDDER=minilm) serves a bench-only
 *   model (`bench-minilm-<run>`, state backfilling); the corpus is enqueued on the bulk lane for
 *   it, the way a backfill does, and the chunk records are read back from its chunk topic. The
 *   rate is taken between the records that complete 10 % and 90 % of the chunks (Kafka record
 *   timestamps), so model loading, capture latency and the tail are outside the window.
 * - The machine is shared, so its load moves during a run: the two are measured in alternating
 *   rounds (raw, pipeline, raw, pipeline, ...) on fresh texts each round, and compared by their
 *   medians; CPU time per chunk (this process for raw, the embedder process for the pipeline,
 *   from /proc) is reported beside it, as it depends far less on what else the machine runs.
 * - Live freshness while a backfill saturates the embedder: a `vecsync run writer` child joins
 *   (a sink name of the bench's own), BENCH_MINILM_BACKFILL_DOCS fresh documents are enqueued on
 *   the bulk lane for the model, and while that lane still has lag, one document is inserted on
 *   the live path (plain SQL, the triggers enqueue it) every 500 ms; its freshness is outbox
 *   created_at → ledger applied_at (searchable), both on the database clock.
 * - Memory: VmRSS and VmHWM of the embedder process after the run, from /proc.
 *
 * Afterwards the model is retired and its documents, outbox rows, cache rows and topic removed.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig, type Config } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { createMinilm } from '../services/adapters/embedding/minilm/index.ts';
import { generateCorpus } from '../services/ops/demo/corpus.ts';
import { createChunker } from '../services/domain/transforms/chunker.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { groupIdFor } from '../services/pipeline/runtime/index.ts';
import { chunkTableName } from '../services/adapters/sinks/pgvector/naming.ts';
import { groupAtEnd, insertDocuments } from '../test/support/pipeline.ts';
import { startService, stopChild } from './services.ts';
import { loadAverage, procCpuSeconds } from './cpu.ts';
import { consumeUntil, withAdmin } from '../test/support/kafka.ts';
import { waitFor } from '../test/support/wait.ts';
import { percentile } from '../services/domain/percentile.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, 'results');
const DOCS = Number(process.env.BENCH_MINILM_DOCS ?? 120);
const ROUNDS = Number(process.env.BENCH_MINILM_ROUNDS ?? 3);
const BACKFILL_DOCS = Number(process.env.BENCH_MINILM_BACKFILL_DOCS ?? 2000);
const LIVE_PROBES = Number(process.env.BENCH_MINILM_LIVE_PROBES ?? 60);
const TARGET_RATIO = 0.9;
const TARGET_RSS_MIB = 512;

async function procStatus(pid: number): Promise<{ rssMiB: number; hwmMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

export async function runMinilmBench(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const model = { name: `bench-minilm-${run}`, version: 1 };
  const key = modelKey(model.name, model.version);
  const tenant = `bench_minilm_${run}`;
  const env: Record<string, string> = {
    VECSYNC_EMBEDDER: 'minilm',
    VECSYNC_EMBEDDING_MODEL: model.name,
    VECSYNC_EMBEDDING_VERSION: String(model.version),
    VECSYNC_GROUP_PREFIX: `bench.minilm.${run}`,
    VECSYNC_METRICS_PORT: '0',
    VECSYNC_LOG_LEVEL: 'info',
  };
  const config = loadConfig({ ...process.env, ...env });
  const { threads, batchSize } = config.embedder.minilm;
  const callSize = config.embedder.batchSize;
  const chunker = createChunker({
    size: config.chunking.size,
    overlap: config.chunking.overlap,
    maxChunks: config.limits.maxChunks,
  });

  // One corpus per round, and its chunks exactly as the embedder will see them (distinct texts
  // only: the service embeds each content hash once).
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const corpus = generateCorpus(DOCS, 100 + r).map((d) => ({ ...d, document_id: `r${r}-${d.document_id}` }));
    const chunksOf = new Map<string, number>();
    const distinct = new Map<string, string>();
    for (const d of corpus) {
      const chunks = await chunker.chunk(d.body);
      chunksOf.set(`${tenant}:${d.document_id}`, chunks.length);
      for (const c of chunks) distinct.set(c.contentHash, c.content);
    }
    rounds.push({
      corpus,
      chunksOf,
      texts: [...distinct.values()],
      chunks: [...chunksOf.values()].reduce((a, b) => a + b, 0),
    });
  }
  const allTexts = rounds.flatMap((r) => r.texts);

  const loadBefore = loadAverage(' / ');
  const raw = createMinilm({ dimensions: 384, minilm: config.embedder.minilm });
  await raw.warmUp();
  const tokens = await Promise.all(allTexts.map(async (t) => (await raw.tokenize(t)).length));
  await raw.embed(allTexts.slice(0, 8)); // first inference allocates; keep it out of the timing

  const admin = new pg.Pool({ connectionString: config.sourceUrl, max: 2 });
  const topics = topicsFor(config.topicPrefix);
  const chunkTopic = topics.chunks(key);
  let child: ChildProcess | undefined;
  let writer: ChildProcess | undefined;
  let live: LiveFreshness | undefined;
  const sinkName = `bench_minilm_${run}`;
  try {
    await admin.query(
      `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state)
       VALUES ($1, $2, 384, 'recursive-char', 1, $3, $4, 'backfilling')`,
      [model.name, model.version, config.chunking.size, config.chunking.overlap],
    );
    // Both groups start at the end of their topics: the bench sees only what it enqueues.
    for (const lane of ['live', 'bulk'] as const) {
      await groupAtEnd(config, `${groupIdFor(config, 'embedder')}.${lane}`, [topics.lane(lane)]);
    }
    child = await startService('embedder', env);
    const pid = child.pid!;
    const idle = await procStatus(pid);
    const rssSamples: number[] = [];
    const sampler = setInterval(() => {
      procStatus(pid)
        .then((s) => rssSamples.push(s.rssMiB))
        .catch(() => undefined);
    }, 500);

    const measured: {
      raw: { chunksPerSecond: number; cpuMsPerChunk: number };
      pipeline: { chunksPerSecond: number; cpuMsPerChunk: number; windowSeconds: number };
      load: string;
    }[] = [];
    try {
      for (const [r, round] of rounds.entries()) {
        // --- raw model, this round's texts ---
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < round.texts.length; i += callSize) await raw.embed(round.texts.slice(i, i + callSize));
        const rawSeconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const rawResult = {
          chunksPerSecond: round.texts.length / rawSeconds,
          cpuMsPerChunk: (cpu.user + cpu.system) / 1000 / round.texts.length,
        };

        // --- the same texts through the embedder service ---
        await seed(admin, tenant, round.corpus);
        const childCpu0 = await procCpuSeconds(pid);
        await admin.query(
          `SELECT vecsync.enqueue_upsert(d, 'bulk', $2, $3) FROM vecsync.documents d
            WHERE tenant_id = $1 AND document_id LIKE $4`,
          [tenant, model.name, model.version, `r${r}-%`],
        );
        const seen = new Map<string, number>();
        await consumeUntil({
          brokers: config.kafkaBrokers,
          topics: [chunkTopic],
          timeoutMs: 900_000,
          keep: (m) => round.chunksOf.has(m.key?.toString('utf8') ?? ''),
          until: (collected) => {
            for (const m of collected) {
              const k = m.key!.toString('utf8');
              if (!seen.has(k)) seen.set(k, Number(m.timestamp));
            }
            return seen.size >= round.chunksOf.size;
          },
        });
        const childCpu = (await procCpuSeconds(pid)) - childCpu0;
        // Chunks completed over time by record timestamp; the rate between 10 % and 90 %.
        let done = 0;
        const timeline = [...seen.entries()]
          .map(([k, ts]) => ({ ts, chunks: round.chunksOf.get(k)! }))
          .sort((a, b) => a.ts - b.ts)
          .map((f) => ({ ts: f.ts, done: (done += f.chunks) }));
        const at = (fraction: number) => timeline.find((t) => t.done >= fraction * round.chunks)!;
        const a = at(0.1);
        const b = at(0.9);
        const pipeline = {
          chunksPerSecond: ((b.done - a.done) * 1000) / Math.max(1, b.ts - a.ts),
          cpuMsPerChunk: (childCpu * 1000) / round.chunks,
          windowSeconds: (b.ts - a.ts) / 1000,
        };
        measured.push({ raw: rawResult, pipeline, load: loadAverage(' / ') });
        process.stdout.write(
          `round ${r + 1}/${ROUNDS}: ${round.texts.length} chunks; raw ${rawResult.chunksPerSecond.toFixed(1)} chunks/s ` +
            `(${rawResult.cpuMsPerChunk.toFixed(1)} CPU ms/chunk), pipeline ${pipeline.chunksPerSecond.toFixed(1)} chunks/s ` +
            `(${pipeline.cpuMsPerChunk.toFixed(1)} CPU ms/chunk); load ${loadAverage(' / ')}\n`,
        );
      }
      process.stdout.write(
        `live freshness during a ${BACKFILL_DOCS}-document backfill on the bulk lane, ${LIVE_PROBES} live inserts...\n`,
      );
      // The writer sees only the backfill and the live inserts, not the rounds' chunk records.
      await groupAtEnd(config, groupIdFor({ ...config, sink: { name: sinkName } }, 'writer'), [chunkTopic]);
      writer = await startService('writer', { ...env, VECSYNC_SINK_NAME: sinkName });
      live = await liveDuringBackfill(admin, config, sinkName, tenant, model);
      process.stdout.write(
        `  p50 ${live.p50Ms.toFixed(0)} ms, p99 ${live.p99Ms.toFixed(0)} ms, max ${live.maxMs.toFixed(0)} ms over ${live.samples} inserts; bulk lane busy at every insert: ${live.busyAtEveryProbe}; backfill documents applied meanwhile: ${live.backfillAppliedDuring}\n` +
          `  commit → chunk record p50 ${live.commitToChunkRecord.p50Ms.toFixed(0)} / p99 ${live.commitToChunkRecord.p99Ms.toFixed(0)} ms; chunk record → applied p50 ${live.chunkRecordToApplied.p50Ms.toFixed(0)} / p99 ${live.chunkRecordToApplied.p99Ms.toFixed(0)} ms\n`,
      );
    } finally {
      clearInterval(sampler);
      await stopChild(writer);
    }
    const memory = await procStatus(pid);
    await raw.close();

    const median = (xs: number[]) => percentile(xs, 50);
    const rawRate = median(measured.map((m) => m.raw.chunksPerSecond));
    const pipelineRate = median(measured.map((m) => m.pipeline.chunksPerSecond));
    const rawCpu = median(measured.map((m) => m.raw.cpuMsPerChunk));
    const pipelineCpu = median(measured.map((m) => m.pipeline.cpuMsPerChunk));
    const ratio = pipelineRate / rawRate;
    const cpuRatio = rawCpu / pipelineCpu;
    const result = {
      date: new Date().toISOString(),
      conditions: {
        cpu: os.cpus()[0]?.model,
        cpus: os.cpus().length,
        node: process.version,
        loadAverageBefore: loadBefore,
        loadAverageAfter: loadAverage(' / '),
        threads,
        inferenceBatch: batchSize,
        textsPerEmbedCall: callSize,
        maxTokens: config.embedder.minilm.maxTokens,
        rounds: ROUNDS,
        documentsPerRound: DOCS,
        chunks: rounds.reduce((n, r) => n + r.chunks, 0),
        distinctChunkTexts: allTexts.length,
        chunkChars: { p50: median(allTexts.map((t) => t.length)), max: Math.max(...allTexts.map((t) => t.length)) },
        chunkTokens: { p50: median(tokens), p99: percentile(tokens, 99), max: Math.max(...tokens) },
        note: 'stack, embedder process and bench on this one machine, shared with other work (see load average)',
      },
      rounds: measured,
      raw: { chunksPerSecond: rawRate, cpuMsPerChunk: rawCpu },
      pipeline: { chunksPerSecond: pipelineRate, cpuMsPerChunk: pipelineCpu, lane: 'bulk' },
      ratio,
      cpuRatio,
      embedderMemoryMiB: {
        idleWithModelLoaded: idle.rssMiB,
        afterRun: memory.rssMiB,
        peakSampled: Math.max(...rssSamples, memory.rssMiB),
        highWaterMark: memory.hwmMiB,
      },
      liveFreshnessDuringBackfill: live ? { ...live, backfillDocuments: BACKFILL_DOCS, sink: 'pgvector' } : undefined,
      targets: { ratio: TARGET_RATIO, rssMiB: TARGET_RSS_MIB },
    };
    await mkdir(RESULTS, { recursive: true });
    const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
    await writeFile(path.join(RESULTS, `minilm-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
    const c = result.conditions;
    const m = result.embedderMemoryMiB;
    const md = [
      `# minilm benchmark, ${result.date}`,
      '',
      `Conditions: ${c.cpus} × ${c.cpu}, Node ${c.node}; load average (1/5/15 min) ${c.loadAverageBefore} before, ${c.loadAverageAfter} after; ` +
        `${c.threads} intra-op thread(s), inference batch ${c.inferenceBatch}, ${c.textsPerEmbedCall} texts per embed call, max ${c.maxTokens} word pieces; ` +
        `${c.rounds} alternating rounds of ${c.documentsPerRound} documents, ${c.chunks} chunks in all (${c.distinctChunkTexts} distinct), ` +
        `${c.chunkChars.p50} characters / ${c.chunkTokens.p50} word pieces per chunk (p50; max ${c.chunkTokens.max} pieces); ${c.note}.`,
      '',
      '| round | raw chunks/s | pipeline chunks/s | raw CPU ms/chunk | pipeline CPU ms/chunk | load after |',
      '|---|---|---|---|---|---|',
      ...measured.map(
        (x, i) =>
          `| ${i + 1} | ${x.raw.chunksPerSecond.toFixed(1)} | ${x.pipeline.chunksPerSecond.toFixed(1)} | ${x.raw.cpuMsPerChunk.toFixed(1)} | ${x.pipeline.cpuMsPerChunk.toFixed(1)} | ${x.load} |`,
      ),
      '',
      '| measure (medians over the rounds) | result | target |',
      '|---|---|---|',
      `| raw model (in process, same texts) | ${rawRate.toFixed(1)} chunks/s, ${rawCpu.toFixed(1)} CPU ms/chunk | |`,
      `| through the embedder service (bulk lane → chunk topic, 10–90 % window) | ${pipelineRate.toFixed(1)} chunks/s, ${pipelineCpu.toFixed(1)} CPU ms/chunk | |`,
      `| pipeline ÷ raw, wall-clock rate | ${(ratio * 100).toFixed(1)} % | ≥ ${TARGET_RATIO * 100} % |`,
      `| pipeline ÷ raw, by CPU time per chunk | ${(cpuRatio * 100).toFixed(1)} % | ≥ ${TARGET_RATIO * 100} % |`,
      `| embedder RSS, model loaded: idle / after the run / peak sampled / VmHWM | ${m.idleWithModelLoaded.toFixed(0)} / ${m.afterRun.toFixed(0)} / ${m.peakSampled.toFixed(0)} / ${m.highWaterMark.toFixed(0)} MiB | ≤ ${TARGET_RSS_MIB} MiB |`,
      ...(live
        ? [
            `| live freshness (commit → searchable in pgvector, one insert per 500 ms) while a ${BACKFILL_DOCS}-document backfill saturates the embedder | p50 ${live.p50Ms.toFixed(0)} ms, p99 ${live.p99Ms.toFixed(0)} ms, max ${live.maxMs.toFixed(0)} ms over ${live.samples} inserts (commit → chunk record p50 ${live.commitToChunkRecord.p50Ms.toFixed(0)} / p99 ${live.commitToChunkRecord.p99Ms.toFixed(0)} ms, chunk record → applied p50 ${live.chunkRecordToApplied.p50Ms.toFixed(0)} / p99 ${live.chunkRecordToApplied.p99Ms.toFixed(0)} ms); bulk lane unfinished at every insert: ${live.busyAtEveryProbe}; ${live.backfillAppliedDuring} backfill documents applied meanwhile | |`,
          ]
        : []),
      '',
    ].join('\n');
    await writeFile(path.join(RESULTS, `minilm-${stamp}.md`), md);
    process.stdout.write(`\n${md}\nwritten to bench/results/minilm-${stamp}.{json,md}\n`);
  } finally {
    await stopChild(child);
    await stopChild(writer);
    await raw.close();
    await admin.query(`UPDATE vecsync.embedding_models SET state = 'retired' WHERE name = $1`, [model.name]);
    await admin.query('DELETE FROM vecsync.embedding_cache WHERE model_key = $1', [key]);
    await admin.query('DELETE FROM vecsync.vector_sync_outbox WHERE embedding_model = $1', [model.name]);
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query('DELETE FROM vecsync.document_acl WHERE tenant_id = $1', [tenant]);
      await client.query('DELETE FROM vecsync.documents WHERE tenant_id = $1', [tenant]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await admin.query('DELETE FROM vecsync.sync_state WHERE sink_name = $1', [sinkName]);
    await admin.end();
    await withAdmin(config.kafkaBrokers, (a) => a.deleteTopics({ topics: [chunkTopic] })).catch(() => undefined);
    const sinkDb = new pg.Client({ connectionString: config.sink.pgvector.url });
    await sinkDb.connect();
    await sinkDb.query(`DROP TABLE IF EXISTS vecsync_sink.${chunkTableName(key)}`);
    await sinkDb.end();
  }
}

/** Writes a round's documents without triggers (no live events for other models). */
async function seed(admin: pg.Pool, tenant: string, corpus: { document_id: string; title: string; body: string }[]) {
  const client = await admin.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    await client.query(
      `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status, metadata, restricted, version, acl_version, updated_at)
       SELECT $1, d, t, b, 'en', 'active', '{}', '{}', 1, 1, now() FROM unnest($2::text[], $3::text[], $4::text[]) AS u(d, t, b)`,
      [tenant, corpus.map((d) => d.document_id), corpus.map((d) => d.title), corpus.map((d) => d.body)],
    );
    await client.query(`INSERT INTO vecsync.document_acl SELECT $1, d, 'group:all' FROM unnest($2::text[]) AS u(d)`, [
      tenant,
      corpus.map((d) => d.document_id),
    ]);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

interface LiveFreshness {
  samples: number;
  /** Commit → the embedder produced the chunk record; then → the writer's ledger row. */
  commitToChunkRecord: { p50Ms: number; p99Ms: number };
  chunkRecordToApplied: { p50Ms: number; p99Ms: number };
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  busyAtEveryProbe: boolean;
  backfillAppliedDuring: number;
}

/**
 * Enqueues a backfill of fresh documents for the bench model on the bulk lane, then inserts one
 * document every 500 ms through the triggers while the backfill is still unfinished, and reads
 * each live document's commit → applied time from the outbox and the ledger.
 */
async function liveDuringBackfill(
  admin: pg.Pool,
  config: Config,
  sinkName: string,
  tenant: string,
  model: { name: string; version: number },
): Promise<LiveFreshness> {
  const key = modelKey(model.name, model.version);
  const backfill = generateCorpus(BACKFILL_DOCS, 900).map((d) => ({ ...d, document_id: `bf-${d.document_id}` }));
  await seed(admin, tenant, backfill);
  const applied = async (prefix: string) =>
    Number(
      (
        await admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM vecsync.sync_state
            WHERE sink_name = $1 AND tenant_id = $2 AND model_key = $3 AND document_id LIKE $4 AND version > 0`,
          [sinkName, tenant, key, `${prefix}%`],
        )
      ).rows[0]!.n,
    );
  await admin.query(
    `SELECT vecsync.enqueue_upsert(d, 'bulk', $2, $3) FROM vecsync.documents d WHERE tenant_id = $1 AND document_id LIKE 'bf-%'`,
    [tenant, model.name, model.version],
  );
  // Probe once the embedder is busy with the backfill (its first documents reach the sink).
  await waitFor(async () => (await applied('bf-')) > 0, { timeoutMs: 300_000, description: 'backfill started' });
  const before = await applied('bf-');
  const corpus = generateCorpus(LIVE_PROBES, 901);
  let busyAtEveryProbe = true;
  const pending: Promise<unknown>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < LIVE_PROBES; i++) {
    const wait = t0 + i * 500 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if ((await applied('bf-')) >= BACKFILL_DOCS) busyAtEveryProbe = false;
    const d = corpus[i]!;
    pending.push(
      insertDocuments(admin, [{ tenant, id: `live-${i}`, title: d.title, body: d.body, acl: ['group:all'] }]),
    );
  }
  await Promise.all(pending);
  const after = await applied('bf-');
  await waitFor(async () => (await applied('live-')) >= LIVE_PROBES, {
    timeoutMs: 600_000,
    description: 'every live insert applied',
  });
  // The chunk record of each live document: when the embedder produced it (broker timestamp).
  const liveKeys = new Set(Array.from({ length: LIVE_PROBES }, (_, i) => `${tenant}:live-${i}`));
  const produced = new Map<string, number>();
  await consumeUntil({
    brokers: config.kafkaBrokers,
    topics: [topicsFor(config.topicPrefix).chunks(key)],
    timeoutMs: 120_000,
    keep: (m) => liveKeys.has(m.key?.toString('utf8') ?? ''),
    until: (collected) => {
      for (const m of collected) produced.set(m.key!.toString('utf8'), Number(m.timestamp));
      return produced.size >= liveKeys.size;
    },
  });
  const res = await admin.query<{ ms: number; document_id: string; created: number; applied: number }>(
    `SELECT extract(epoch FROM s.applied_at - o.created_at)::float8 * 1000 AS ms, s.document_id,
            extract(epoch FROM o.created_at)::float8 * 1000 AS created, extract(epoch FROM s.applied_at)::float8 * 1000 AS applied
       FROM vecsync.sync_state s
       JOIN vecsync.vector_sync_outbox o ON o.tenant_id = s.tenant_id AND o.document_id = s.document_id
        AND o.lane = 'live' AND o.embedding_model = $4
      WHERE s.sink_name = $1 AND s.tenant_id = $2 AND s.model_key = $3 AND s.document_id LIKE 'live-%'`,
    [sinkName, tenant, key, model.name],
  );
  const ms = res.rows.map((r) => r.ms);
  const toChunkRecord = res.rows.map((r) => produced.get(`${tenant}:${r.document_id}`)! - r.created);
  const toApplied = res.rows.map((r) => r.applied - produced.get(`${tenant}:${r.document_id}`)!);
  return {
    samples: ms.length,
    commitToChunkRecord: { p50Ms: percentile(toChunkRecord, 50), p99Ms: percentile(toChunkRecord, 99) },
    chunkRecordToApplied: { p50Ms: percentile(toApplied, 50), p99Ms: percentile(toApplied, 99) },
    p50Ms: percentile(ms, 50),
    p99Ms: percentile(ms, 99),
    maxMs: Math.max(...ms),
    busyAtEveryProbe,
    backfillAppliedDuring: after - before,
  };
}
