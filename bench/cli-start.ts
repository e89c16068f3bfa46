/**
 * CLI start benchmark: how long `vecsync --help`, `vecsync status --json` and
 * `vecsync inspect vectors --json` take, against `node -e 0` measured in turn in the same run
 * (the baseline: Node's own start on this machine, under the same load).
 *
 * `status --help` and `inspect vectors --help` load exactly what those commands load (their
 * module and everything it imports) and stop before doing any I/O: the difference to `node -e 0`
 * is the CLI's start overhead. The full runs add the commands' own work (probing the stack,
 * reading every consumer group's offsets, querying the sink), which grows with the deployment.
 *
 * Each command runs BENCH_CLI_ROUNDS times (default 15), interleaved with the baseline so that a
 * change of machine load hits both alike; the medians and their difference are reported. The
 * bundle in dist/ is built first, as `npm ci` does, so this measures what an operator runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { assetPath } from '../services/domain/assets.ts';
import { percentile } from '../services/domain/percentile.ts';

const ROUNDS = Number(process.env.BENCH_CLI_ROUNDS ?? 15);
const BIN = assetPath('bin', 'vecsync.mjs');
const RESULTS = assetPath('bench', 'results');

const COMMANDS: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  'vecsync --help': [BIN, '--help'],
  'vecsync status --help (start only)': [BIN, 'status', '--help'],
  'vecsync inspect vectors --help (start only)': [BIN, 'inspect', 'vectors', '--help'],
  'vecsync status --json': [BIN, 'status', '--json'],
  'vecsync inspect vectors --json': [BIN, 'inspect', 'vectors', '--tenant', 'bench-cli-nobody', '--json'],
};

function timeOnce(args: string[]): number {
  const start = process.hrtime.bigint();
  const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.status !== 0) throw new Error(`${args.join(' ')} exited ${run.status}: ${run.stderr.trim().split('\n')[0]}`);
  return ms;
}

export async function runCliStartBench(): Promise<void> {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: assetPath(), stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(COMMANDS).map((k) => [k, []]));
  for (const args of Object.values(COMMANDS)) timeOnce(args); // warm the page cache once
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, args] of Object.entries(COMMANDS)) samples[name]!.push(timeOnce(args));
  }
  const baseline = percentile(samples['node -e 0']!, 50);
  const rows = Object.entries(samples).map(([name, ms]) => ({
    command: name,
    medianMs: Math.round(percentile(ms, 50)),
    p90Ms: Math.round(percentile(ms, 90)),
    overBaselineMs: Math.round(percentile(ms, 50) - baseline),
  }));
  const conditions = {
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
    loadAverage: os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' '),
    node: process.version,
    rounds: ROUNDS,
    goal: 'start overhead (median over `node -e 0`) ≤ 300 ms',
  };
  const lines = [
    '# CLI start',
    '',
    `Conditions: ${JSON.stringify(conditions)}`,
    '',
    '| command | median ms | p90 ms | median over `node -e 0` |',
    '|---|---|---|---|',
    ...rows.map((r) => `| \`${r.command}\` | ${r.medianMs} | ${r.p90Ms} | ${r.overBaselineMs} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  await mkdir(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:T]/g, '-').slice(0, 19);
  await writeFile(path.join(RESULTS, `${stamp}-cli-start.md`), lines.join('\n') + '\n');
  await writeFile(path.join(RESULTS, `${stamp}-cli-start.json`), JSON.stringify({ conditions, rows }, null, 2) + '\n');
}
