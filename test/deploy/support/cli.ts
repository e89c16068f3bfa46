/** The vecsync CLI as a child process: what an operator (and the container) runs. */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './manifests.ts';

export const BIN = path.join(REPO_ROOT, 'bin', 'vecsync.mjs');

/** Runs `vecsync <args>` to completion with exactly `env` (plus PATH and HOME). */
export function vecsync(
  args: string[],
  env: Record<string, string> = {},
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every variable of the config schema, read from `vecsync config --markdown`. */
export function configVariableNames(): Set<string> {
  const r = vecsync(['config', '--markdown']);
  if (r.code !== 0) throw new Error(`vecsync config --markdown: ${r.stderr}`);
  const names = [...r.stdout.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
  if (names.length < 10) throw new Error(`vecsync config --markdown listed ${names.length} variables`);
  return new Set(names);
}

export interface Running {
  stderr(): string;
  stop(): Promise<number | null>;
}

/** Starts a long-running `vecsync <args>`; `stop()` sends SIGTERM and waits for the exit code. */
export function startVecsync(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
