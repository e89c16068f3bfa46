/**
 * Failover benchmark: how long the partitions of a SIGKILLed consumer-group member stay
 * unprocessed before another member processes them.
 *
 * Two propagators (`vecsync run propagator` processes, one consumer group, its own sink name and
 * group prefix) share the priority lane. Each round: wait until the group is stable with both
 * members holding partitions; SIGKILL one; at once soft-delete BENCH_FAILOVER_DOCS documents whose
 * keys cover every partition (plain SQL: delete events on the priority lane); the failover time is
 * from the kill until the last of them is in the sink's ledger. The documents on the surviving
 * member's partitions are applied in well under a second; the ones on the dead member's wait for the
 * broker to expire its session and the group to rebalance. A fresh member then joins for the next
 * round. BENCH_FAILOVER_ROUNDS rounds (default 3). Results go to bench/results/<date>-failover.{json,md}.
 *
 * Figures on a shared, loaded machine are noisy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { CONSUMER_SETTINGS } from '../services/adapters/kafka/client.ts';
import { createRuntime } from '../services/pipeline/runtime/index.ts';
import { percentile } from '../services/domain/percentile.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, 'results');
const BIN = path.join(HERE, '..', 'bin', 'vecsync.mjs');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function runFailoverBench(): Promise<void> {
  const rounds = Number(process.env.BENCH_FAILOVER_ROUNDS ?? 3);
  const docCount = Number(process.env.BENCH_FAILOVER_DOCS ?? 36);
  const sinkName = `bench_failover_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    VECSYNC_SINK_NAME: sinkName,
    VECSYNC_GROUP_PREFIX: `bench.failover.${sinkName}`,
    VECSYNC_LOG_LEVEL: 'info',
    VECSYNC_METRICS_PORT: '0',
  };
  const config = loadConfig({ ...process.env, ...env });
  const tenant = `bench_failover_${randomBytes(4).toString('hex')}`;
  const source = new pg.Pool({ connectionString: config.sourceUrl, max: 4 });
  const rt = await createRuntime(config, 'bench-failover');
  const groupId = rt.groupId('propagator');
  const admin = rt.kafka.admin();
  await admin.connect();
  const members: { child: ChildProcess; log: string[] }[] = [];
  const join = () => {
    const log: string[] = [];
    const child = spawn(process.execPath, [BIN, 'run', 'propagator'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    members.push({ child, log });
  };
  const docs = Array.from({ length: docCount }, (_, i) => `d${i}`);
  const times: number[] = [];
  try {
    // Start at the end of the lane, so the group sees only this benchmark's events.
    const ends = await admin.fetchTopicOffsets(rt.topics.lane('priority'));
    await admin.setOffsets({
      groupId,
      topic: rt.topics.lane('priority'),
      partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
    });
    for (const d of docs)
      await source.query(
        `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, status) VALUES ($1, $2, $2, 'failover', 'active')`,
        [tenant, d],
      );
    join();
    join();
    for (let round = 1; round <= rounds; round++) {
      await until('two members with partitions each, group stable', async () => {
        const { groups } = await admin.describeGroups([groupId]);
        const g = groups[0];
        // An assignment without partitions is 10 bytes (version, empty topic array, empty user data).
        return (
          g?.state === 'Stable' && g.members.length === 2 && g.members.every((m) => m.memberAssignment.length > 12)
        );
      });
      // Settle: the members are fetching.
      await sleep(2_000);
      const victim = members.shift()!;
      const killedAt = Date.now();
      victim.child.kill('SIGKILL');
      const versions = new Map<string, number>();
      for (const d of docs) {
        const res = await source.query<{ version: string }>(
          `UPDATE vecsync.documents SET status = 'deleted' WHERE tenant_id = $1 AND document_id = $2 RETURNING version`,
          [tenant, d],
        );
        versions.set(d, Number(res.rows[0]!.version));
      }
      const appliedAt = new Map<string, number>();
      await until(
        'every delete applied by a surviving member',
        async () => {
          const res = await source.query<{ document_id: string; version: string }>(
            `SELECT document_id, version FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND tombstone`,
            [sinkName, tenant],
          );
          const now = Date.now();
          for (const r of res.rows)
            if (Number(r.version) >= versions.get(r.document_id)! && !appliedAt.has(r.document_id))
              appliedAt.set(r.document_id, now);
          return appliedAt.size === docs.length;
        },
        90_000,
      ).catch((error: unknown) => {
        const logs = members.map((m) => m.log.slice(-5).join('')).join('\n---\n');
        throw new Error(`${(error as Error).message}: ${appliedAt.size} of ${docs.length} applied\n${logs}`);
      });
      if (process.env.BENCH_FAILOVER_DEBUG)
        process.stdout.write(
          members.map((m) => m.log.filter((l) => !l.includes('"level":30')).join('')).join('\n---\n'),
        );
      const spread = [...appliedAt.values()].map((t) => t - killedAt);
      const failover = Math.max(...spread);
      times.push(failover);
      process.stdout.write(
        `round ${round}: SIGKILL → last partition processed ${(failover / 1000).toFixed(2)} s (first document ${(Math.min(...spread) / 1000).toFixed(2)} s)\n`,
      );
      // Re-activate for the next round (upserts on the live lane, which nobody consumes here).
      await source.query(`UPDATE vecsync.documents SET status = 'active' WHERE tenant_id = $1`, [tenant]);
      join();
    }
  } finally {
    for (const m of members) m.child.kill('SIGTERM');
    await admin.disconnect();
    await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1`, [tenant]).catch(() => undefined);
    await source.query(`DELETE FROM vecsync.sync_state WHERE sink_name = $1`, [sinkName]).catch(() => undefined);
    await source.end();
    await rt.close();
  }
  const result = {
    at: new Date().toISOString(),
    host: { cpus: os.cpus().length, load: os.loadavg() },
    consumer: CONSUMER_SETTINGS,
    rounds: times.length,
    failover_ms: times,
    median_ms: percentile(times, 50),
    max_ms: Math.max(...times),
  };
  const stamp = result.at.replace(/[:T]/g, '-').slice(0, 19);
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, `${stamp}-failover.json`), JSON.stringify(result, null, 2) + '\n');
  const md = [
    `# Failover (${result.at})`,
    '',
    `Two propagators in one group; one SIGKILLed per round; time until every partition is processed again.`,
    `Consumer: session ${CONSUMER_SETTINGS.sessionTimeout} ms, heartbeat ${CONSUMER_SETTINGS.heartbeatInterval} ms. ` +
      `Host: ${result.host.cpus} CPUs, load ${result.host.load.map((l) => l.toFixed(1)).join(' ')} (shared, noisy).`,
    '',
    '| round | failover (s) |',
    '|---|---|',
    ...times.map((t, i) => `| ${i + 1} | ${(t / 1000).toFixed(2)} |`),
    '',
    `median ${(result.median_ms / 1000).toFixed(2)} s, max ${(result.max_ms / 1000).toFixed(2)} s`,
    '',
  ].join('\n');
  await writeFile(path.join(RESULTS, `${stamp}-failover.md`), md);
  process.stdout.write(`\n${md}\nwritten to bench/results/${stamp}-failover.{json,md}\n`);
}
