/** What the three JVM components share: finding java, pid files, marked spawns, stopping. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MissingPrerequisiteError } from '../errors.ts';
import { logFile, pidFile, type ComponentName } from '../paths.ts';
import {
  findExecutable,
  isExecutable,
  isOurProcess,
  readPidFile,
  removeFile,
  run,
  spawnDetached,
  stopPid,
  writePidFile,
} from '../procs.ts';
import { processMarker } from '../render.ts';
import type { StackContext } from '../types.ts';

/** Major version from `java -version` output ("17.0.15", "1.8.0_392" → 8). Pure. */
export function javaMajorVersion(output: string): number | undefined {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(output);
  if (!m) return undefined;
  const first = Number(m[1]);
  return first === 1 && m[2] ? Number(m[2]) : first;
}

/** Major version from a JDK's `release` file (`JAVA_VERSION="25.0.3"`). Pure. */
export function javaReleaseMajor(releaseText: string): number | undefined {
  const m = /^JAVA_VERSION="(\d+)(?:\.(\d+))?/m.exec(releaseText);
  if (!m) return undefined;
  const first = Number(m[1]);
  return first === 1 && m[2] ? Number(m[2]) : first;
}

/** Where JDKs other than the default one are installed (Debian packages, Temurin). */
const JVM_DIR = '/usr/lib/jvm';
const found = new Map<number, string>();

/**
 * A java executable of at least `minMajor`: the one on PATH when it is new enough, else the
 * newest JDK under /usr/lib/jvm. Kafka 4.1 and Connect need 17; Apicurio Registry 3.3 is
 * compiled for 21 (class file 65), which bookworm does not package, so it may run on a
 * second JDK such as Temurin's.
 */
export async function requireJava(minMajor = 17, forWhat = 'Kafka 4.1 and Kafka Connect'): Promise<string> {
  const cached = found.get(minMajor);
  if (cached) return cached;
  const candidates: Array<{ java: string; major: number }> = [];
  const onPath = await findExecutable('java');
  if (onPath) {
    const major = javaMajorVersion((await run(onPath, ['-version'])).output);
    if (major !== undefined) candidates.push({ java: onPath, major });
  }
  const pathOk = candidates.find((c) => c.major >= minMajor);
  if (pathOk) {
    found.set(minMajor, pathOk.java);
    return pathOk.java;
  }
  for (const dir of await fs.readdir(JVM_DIR).catch(() => [] as string[])) {
    const home = path.join(JVM_DIR, dir);
    const major = javaReleaseMajor(await fs.readFile(path.join(home, 'release'), 'utf8').catch(() => ''));
    const java = path.join(home, 'bin', 'java');
    if (major !== undefined && major >= minMajor && (await isExecutable(java))) candidates.push({ java, major });
  }
  const best = candidates.filter((c) => c.major >= minMajor).sort((a, b) => b.major - a.major)[0];
  if (!best) {
    const seen = candidates.length
      ? ` (found Java ${[...new Set(candidates.map((c) => c.major))].join(', ')})`
      : onPath
        ? ''
        : ' (no java on PATH)';
    throw new MissingPrerequisiteError(
      `java ${minMajor}+ not found on PATH or under ${JVM_DIR}${seen}: ${forWhat} need${forWhat.includes(' and ') ? '' : 's'} it`,
    );
  }
  found.set(minMajor, best.java);
  return best.java;
}

/** Where a JVM's stdout/stderr goes when it also writes its own log4j2 file. */
export function consoleLog(ctx: StackContext, name: ComponentName): string {
  return path.join(ctx.paths.logs, `${name}.console.log`);
}

export async function jvmRunningPid(ctx: StackContext, name: ComponentName): Promise<number | undefined> {
  const pid = await readPidFile(pidFile(ctx.paths, name));
  if (pid === undefined) return undefined;
  return (await isOurProcess(pid, processMarker(name, ctx.paths.home))) ? pid : undefined;
}

export async function jvmSpawn(
  ctx: StackContext,
  name: ComponentName,
  args: string[],
  opts: { cwd: string; stdoutLog?: string; java?: string },
): Promise<number> {
  const java = opts.java ?? (await requireJava());
  const pid = await spawnDetached({
    command: java,
    args,
    cwd: opts.cwd,
    logFile: opts.stdoutLog ?? logFile(ctx.paths, name),
  });
  await writePidFile(pidFile(ctx.paths, name), pid);
  return pid;
}

/** SIGTERM, and SIGKILL after `graceMs` (Kafka's controlled shutdown can take a while). */
export async function jvmStop(
  ctx: StackContext,
  name: ComponentName,
  graceMs: number,
): Promise<'stopped' | 'killed' | 'not-running'> {
  const pid = await jvmRunningPid(ctx, name);
  const file = pidFile(ctx.paths, name);
  if (pid === undefined) {
    await removeFile(file);
    return 'not-running';
  }
  const how = await stopPid(pid, graceMs);
  await removeFile(file);
  return how === 'killed' ? 'killed' : how === 'terminated' ? 'stopped' : 'not-running';
}

/** GET a JSON document with a short timeout. */
export async function getJson(url: string, timeoutMs = 3000): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.json();
}
