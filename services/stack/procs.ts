/**
 * Process helpers: detached spawns with output to a log file, pid files, stopping a pid
 * (SIGTERM, then SIGKILL after a grace period), running a tool to completion, and the
 * stack lock that keeps two concurrent `stack up` calls from starting a component twice.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StackError } from './errors.ts';
import { sleep, waitFor } from './wait.ts';

export interface RunAs {
  uid: number;
  gid: number;
}

/** A command line for a log header, with classpaths shortened to their first entry and length. Pure. */
export function commandLine(command: string, args: readonly string[]): string {
  const shown = args.map((a) => {
    if (a.length <= 200) return a;
    const parts = a.split(':');
    return parts.length > 1 ? `${parts[0]}:…(${parts.length} entries)` : `${a.slice(0, 200)}…`;
  });
  return [command, ...shown].join(' ');
}

export async function readPidFile(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await fs.readFile(file, 'utf8')).split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function writePidFile(file: string, pid: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${pid}\n`);
}

export async function removeFile(file: string): Promise<void> {
  await fs.rm(file, { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process' argv from /proc, or undefined when it is gone (or a zombie). */
export async function processArgs(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name, is the state; Z is a zombie.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return undefined;
    const raw = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((a) => a.length > 0);
  } catch {
    return undefined;
  }
}

/** True when the pid is alive and its argv contains every marker (see render.processMarker). */
export async function isOurProcess(pid: number, markers: readonly string[]): Promise<boolean> {
  const args = await processArgs(pid);
  return args !== undefined && markers.every((m) => args.includes(m));
}

export interface DetachedSpawn {
  command: string;
  args: string[];
  logFile: string;
  cwd: string;
  runAs?: RunAs;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a process in its own session with stdout and stderr appended to `logFile`, and lets
 * this process exit without waiting for it. Returns its pid.
 */
export async function spawnDetached(s: DetachedSpawn): Promise<number> {
  await fs.mkdir(path.dirname(s.logFile), { recursive: true });
  const log = await fs.open(s.logFile, 'a');
  try {
    await log.write(`\n----- ${new Date().toISOString()} vecsync stack: ${commandLine(s.command, s.args)}\n`);
    const options: SpawnOptions = {
      cwd: s.cwd,
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: s.env ?? process.env,
    };
    if (s.runAs) Object.assign(options, s.runAs);
    const child = spawn(s.command, s.args, options);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new StackError(`cannot start ${s.command}: ${err.message}`, { cause: err })));
      child.once('spawn', () => resolve(child.pid ?? -1));
    });
    child.unref();
    return pid;
  } finally {
    await log.close();
  }
}

/**
 * Sends SIGTERM and waits for the pid to go away; SIGKILL after `graceMs`.
 * Returns how it ended.
 */
export async function stopPid(pid: number, graceMs: number): Promise<'terminated' | 'killed' | 'not-running'> {
  if (!isAlive(pid)) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  const gone = async () => (await processArgs(pid)) === undefined;
  try {
    await waitFor(`pid ${pid} to exit`, gone, { timeoutMs: graceMs, intervalMs: 200 });
    return 'terminated';
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return 'terminated';
    }
    await waitFor(`pid ${pid} to exit after SIGKILL`, gone, { timeoutMs: 10_000, intervalMs: 100 });
    return 'killed';
  }
}

export interface RunResult {
  code: number;
  output: string;
}

export interface RunOptions {
  cwd?: string;
  runAs?: RunAs;
  /** Appends the combined output here as well. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command to completion and returns its exit code and combined output (never throws on exit code). */
export async function run(command: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const log = o.logFile ? await openLog(o.logFile, commandLine(command, args)) : undefined;
  try {
    return await new Promise<RunResult>((resolve, reject) => {
      const options: SpawnOptions = { cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env };
      if (o.runAs) Object.assign(options, o.runAs);
      const child = spawn(command, args, options);
      const chunks: Buffer[] = [];
      const collect = (b: Buffer) => {
        chunks.push(b);
        log?.write(b);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      const timer = o.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), o.timeoutMs) : undefined;
      child.once('error', (err) => {
        if (timer) clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : 1), output: Buffer.concat(chunks).toString('utf8') });
      });
    });
  } finally {
    await log?.close();
  }
}

async function openLog(file: string, title: string) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const handle = await fs.open(file, 'a');
  await handle.write(`\n----- ${new Date().toISOString()} ${title}\n`);
  const stream = handle.createWriteStream();
  return {
    write: (b: Buffer) => stream.write(b),
    close: () => new Promise<void>((resolve) => stream.end(() => resolve())),
  };
}

/** Absolute path of an executable on PATH (`command -v`), or undefined. */
export async function findExecutable(name: string): Promise<string | undefined> {
  if (name.includes('/')) return (await isExecutable(name)) ? name : undefined;
  try {
    const { code, output } = await run('sh', ['-c', `command -v ${name}`]);
    const found = output.trim().split('\n')[0];
    return code === 0 && found ? found : undefined;
  } catch {
    return undefined;
  }
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file only when its content differs; returns whether it changed. */
export async function writeIfChanged(file: string, content: string): Promise<boolean> {
  try {
    if ((await fs.readFile(file, 'utf8')) === content) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  return true;
}

/** Last lines of a log file, for error messages that point at it. */
export async function tailFile(file: string, lines: number): Promise<string[]> {
  try {
    const text = await fs.readFile(file, 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines);
  } catch {
    return [];
  }
}

/**
 * Holds an exclusive lock (a file with our pid) while `fn` runs. A lock whose pid is dead is
 * stale and taken over; a live one is waited for up to `timeoutMs`.
 */
export async function withLock<T>(file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await fs.open(file, 'wx');
      await handle.write(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readPidFile(file);
      if (holder === undefined || !isAlive(holder)) {
        await fs.rm(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new StackError(
          `another vecsync stack command (pid ${holder}) holds ${file}; waited ${Math.round(timeoutMs / 1000)}s`,
        );
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(file, { force: true });
  }
}
