/** vecsync services as child processes for the benchmarks (`vecsync run <service>`, what a deployment runs). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../test/support/wait.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'vecsync.mjs');

/** `vecsync run <service>` as a child process, once it logs that it is running. */
export async function startService(service: string, env: Record<string, string>): Promise<ChildProcess> {
  let logs = '';
  // BENCH_CPU_PROF_DIR: each service writes a V8 CPU profile there on exit (bench/profile.ts reads it).
  const profile = process.env.BENCH_CPU_PROF_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
    : [];
  const child = spawn(process.execPath, [...profile, BIN, 'run', service], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (logs = (logs + d.toString('utf8')).slice(-16_384)));
  child.stderr!.on('data', (d: Buffer) => (logs = (logs + d.toString('utf8')).slice(-16_384)));
  await waitFor(() => logs.includes('"msg":"running"') || child.exitCode !== null, {
    timeoutMs: 180_000,
    description: `vecsync run ${service} is running`,
  });
  if (child.exitCode !== null) throw new Error(`${service} exited with ${child.exitCode}: ${logs.slice(-2000)}`);
  return child;
}

export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}
