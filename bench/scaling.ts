/**
 * The scaling curve (`npm run bench -- scaling`): the same load at 1, 2 and 4 instances of the
 * embedder and of the writer, each a `vecsync run` child process as a deployment runs them,
 * sharing one consumer group per service over the lanes' 6 partitions.
 *
 * Per step: the bulk throughput of BENCH_DOCS documents (commit → applied, database clock) and the
 * freshness of 100 single-document transactions per second for BENCH_SCALING_SECONDS, with the
 * CPU each component used (bench/cpu.ts). Every step has a sink name and group prefix of its own,
 * and its groups start at the end of their topics. The hashing embedder keeps the embedding cost
 * small, so the curve shows what the rest of the pipeline (Kafka, the writer, PostgreSQL's HNSW
 * inserts) does with more processes on this machine's 2 cores.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { groupIdFor } from '../services/pipeline/runtime/index.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { modelKey } from '../services/domain/types.ts';
import { chunkTableName } from '../services/adapters/sinks/pgvector/naming.ts';
import { groupAtEnd } from '../test/support/pipeline.ts';
import { withAdmin } from '../test/support/kafka.ts';
import { waitFor } from '../test/support/wait.ts';
import { formatCpuUsage, loadAverage, machine, type CpuUsage } from './cpu.ts';
import { startService, stopChild } from './services.ts';
import { freshness, measured, throughput } from './sync-path.ts';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const STEPS = (process.env.BENCH_SCALING_STEPS ?? '1,2,4').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SCALING_SECONDS ?? 20);

/** Waits until every group has `members` members (the rebalance after the last join is over). */
async function groupsJoined(brokers: string[], groups: string[], members: number): Promise<void> {
  await waitFor(
    () =>
      withAdmin(brokers, async (admin) => {
        const { groups: described } = await admin.describeGroups(groups);
        return described.every((g) => g.state === 'Stable' && g.members.length === members);
      }),
    { timeoutMs: 120_000, intervalMs: 500, description: `${groups.join(', ')} stable with ${members} members each` },
  );
}

interface Step {
  instances: number;
  throughput: { chunksPerSecond: number; documentsPerSecond: number; seconds: number; chunks: number };
  throughputCpu: CpuUsage;
  freshness: { p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number; documents: number; offeredRate: number };
  freshnessCpu: CpuUsage;
}

export async function runScalingBench(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const base = loadConfig({ ...process.env, VECSYNC_EMBEDDER: 'hashing' });
  const source = new pg.Pool({ connectionString: base.sourceUrl, max: 4 });
  const key = modelKey(base.embedder.model, base.embedder.version);
  const topics = topicsFor(base.topicPrefix);
  const loadBefore = loadAverage();
  const steps: Step[] = [];
  const sinks: string[] = [];
  try {
    for (const n of STEPS) {
      const sinkName = `bench_scale_${run}_${n}`;
      sinks.push(sinkName);
      const env = {
        VECSYNC_EMBEDDER: 'hashing',
        VECSYNC_SINK_NAME: sinkName,
        VECSYNC_GROUP_PREFIX: `bench.scale.${run}.${n}`,
        VECSYNC_METRICS_PORT: '0',
        VECSYNC_LOG_LEVEL: 'info',
      };
      const config = loadConfig({ ...process.env, ...env });
      const embedderGroup = groupIdFor(config, 'embedder');
      const writerGroup = groupIdFor(config, 'writer');
      for (const lane of ['live', 'bulk'] as const) {
        await groupAtEnd(config, `${embedderGroup}.${lane}`, [topics.lane(lane)]);
      }
      await groupAtEnd(config, writerGroup, [topics.chunks(key)]);
      process.stdout.write(`${n} embedder + ${n} writer processes...\n`);
      const children: ChildProcess[] = [];
      try {
        for (let i = 0; i < n; i++) {
          children.push(await startService('embedder', env), await startService('writer', env));
        }
        await groupsJoined(config.kafkaBrokers, [`${embedderGroup}.live`, writerGroup], n);
        const target = { source, sinkName, modelKey: key };
        const tp = await measured(() => throughput(target, `scale${run}n${n}`));
        process.stdout.write(
          `  bulk: ${tp.value.chunksPerSecond.toFixed(0)} chunks/s (${tp.value.documentsPerSecond.toFixed(0)} documents/s, ${tp.value.seconds.toFixed(2)} s)\n${formatCpuUsage(tp.cpu)}\n`,
        );
        const fr = await measured(() => freshness(target, `scale${run}n${n}`, SECONDS));
        process.stdout.write(
          `  freshness at 100/s: p50 ${fr.value.p50Ms.toFixed(0)} ms, p99 ${fr.value.p99Ms.toFixed(0)} ms, max ${fr.value.maxMs.toFixed(0)} ms\n${formatCpuUsage(fr.cpu)}\n`,
        );
        steps.push({
          instances: n,
          throughput: {
            chunksPerSecond: tp.value.chunksPerSecond,
            documentsPerSecond: tp.value.documentsPerSecond,
            seconds: tp.value.seconds,
            chunks: tp.value.chunks,
          },
          throughputCpu: tp.cpu,
          freshness: {
            p50Ms: fr.value.p50Ms,
            p90Ms: fr.value.p90Ms,
            p99Ms: fr.value.p99Ms,
            maxMs: fr.value.maxMs,
            documents: fr.value.documents,
            offeredRate: fr.value.offeredRate,
          },
          freshnessCpu: fr.cpu,
        });
      } finally {
        await Promise.all(children.map((c) => stopChild(c)));
      }
    }
    const result = {
      date: new Date().toISOString(),
      conditions: {
        ...machine(),
        embedder: `hashing ${base.embedder.dimensions} dims`,
        lanePartitions: 6,
        chunkTopicPartitions: 6,
        documentsPerThroughputRun: Number(process.env.BENCH_DOCS ?? 3000),
        freshnessSeconds: SECONDS,
        loadAverageBefore: loadBefore,
        loadAverageAfter: loadAverage(),
        note: 'stack, services and load generator on this one machine; each step runs alone',
      },
      steps,
    };
    await mkdir(RESULTS, { recursive: true });
    const stamp = result.date.slice(0, 19).replace(/[:T]/g, '-');
    await writeFile(path.join(RESULTS, `${stamp}-scaling.json`), JSON.stringify(result, null, 2) + '\n');
    const cores = (u: CpuUsage) =>
      u.components
        .filter((c) => c.coresUsed >= 0.02)
        .map((c) => `${c.component} ${c.coresUsed.toFixed(2)}`)
        .join(', ');
    const md = [
      `# Scaling benchmark, ${result.date}`,
      '',
      `Conditions: ${result.conditions.cores} × ${result.conditions.cpu}, Node ${result.conditions.node}, ${result.conditions.embedder}, 6 partitions per lane and chunk topic, ${result.conditions.documentsPerThroughputRun} documents per bulk run, freshness at 100 documents/s for ${SECONDS} s; load average ${loadBefore} before, ${result.conditions.loadAverageAfter} after; ${result.conditions.note}.`,
      '',
      '| embedder + writer processes | bulk chunks/s | bulk documents/s | freshness p50 / p99 / max | cores used in the bulk run (machine total) |',
      '|---|---|---|---|---|',
      ...steps.map(
        (s) =>
          `| ${s.instances} + ${s.instances} | ${s.throughput.chunksPerSecond.toFixed(0)} | ${s.throughput.documentsPerSecond.toFixed(0)} | ${s.freshness.p50Ms.toFixed(0)} / ${s.freshness.p99Ms.toFixed(0)} / ${s.freshness.maxMs.toFixed(0)} ms | ${cores(s.throughputCpu)} (${(s.throughputCpu.machineCpuSeconds / s.throughputCpu.seconds).toFixed(2)}) |`,
      ),
      '',
    ].join('\n');
    await writeFile(path.join(RESULTS, `${stamp}-scaling.md`), md);
    process.stdout.write(`\n${md}\nwritten to bench/results/${stamp}-scaling.{json,md}\n`);
  } finally {
    await source.query('DELETE FROM vecsync.sync_state WHERE sink_name = ANY($1)', [sinks]).catch(() => undefined);
    await source.end();
    const sink = new pg.Client({ connectionString: base.sink.pgvector.url });
    await sink.connect();
    await sink
      .query(`DELETE FROM vecsync_sink.${chunkTableName(key)} WHERE sink_name = ANY($1)`, [sinks])
      .catch(() => undefined);
    await sink.end();
  }
}
