/**
 * `vecsync stack up|down|status`: orchestration over the component registry. `up` is
 * idempotent (a component whose pid is alive and healthy is left alone), checks every port it
 * is about to bind before starting anything, and waits for real health, never a fixed time.
 */
import fs from 'node:fs/promises';
import { ConfigError } from '../domain/errors.ts';
import type { StackSettings } from './types.ts';
import { COMPONENTS } from './components/index.ts';
import { consoleLog } from './components/jvm.ts';
import { StackError } from './errors.ts';
import { downLine, upLine } from './format.ts';
import { logFile, stackPaths } from './paths.ts';
import { assertPortsFree, duplicatePorts } from './ports.ts';
import { processArgs, tailFile, withLock } from './procs.ts';
import type { ComponentStatus, StackComponent, StackContext } from './types.ts';
import { waitFor } from './wait.ts';

export interface UpOutcome {
  name: string;
  pid: number;
  port: number;
  /** false when the component was already up and left alone. */
  started: boolean;
  elapsedMs: number;
}

export function stackContext(config: StackSettings, say: (line: string) => void = () => {}): StackContext {
  return { config, paths: stackPaths(config.stackHome), say };
}

async function ensureDirs(ctx: StackContext): Promise<void> {
  const p = ctx.paths;
  for (const d of [p.home, p.cache, p.conf, p.data, p.logs, p.run, p.tmp]) await fs.mkdir(d, { recursive: true });
}

/** The most telling recent line of a component's logs, for a one-line failure. */
async function lastLogHint(ctx: StackContext, c: StackComponent): Promise<string> {
  const files =
    c.name === 'postgres' || c.name === 'registry'
      ? [logFile(ctx.paths, c.name)]
      : [consoleLog(ctx, c.name), logFile(ctx.paths, c.name)];
  for (const f of files) {
    const lines = await tailFile(f, 80);
    const bad = lines.filter((l) => /\b(ERROR|FATAL|PANIC|Exception|Error:)/.test(l)).pop();
    if (bad) return `: ${bad.trim().slice(0, 240)}`;
  }
  return '';
}

async function waitHealthy(ctx: StackContext, c: StackComponent, pid: number): Promise<void> {
  try {
    await waitFor(`${c.name} to become healthy`, () => c.isHealthy(ctx), {
      timeoutMs: c.readyTimeoutMs,
      intervalMs: 500,
      abortIf: async () => {
        if ((await processArgs(pid)) === undefined) {
          throw new StackError(
            `${c.name} (pid ${pid}) exited during start-up${await lastLogHint(ctx, c)} (see ${logFile(ctx.paths, c.name)})`,
          );
        }
      },
    });
  } catch (err) {
    if (err instanceof StackError && err.message.startsWith('timed out')) {
      throw new StackError(
        `${c.name} (pid ${pid}) is running but not healthy after ${Math.round(c.readyTimeoutMs / 1000)}s${await lastLogHint(ctx, c)} (see ${logFile(ctx.paths, c.name)})`,
      );
    }
    throw err;
  }
}

/**
 * Brings every component up, in order. Throws (and so exits non-zero) on the first component
 * that cannot be installed, started or made healthy.
 */
export async function stackUp(config: StackSettings, say: (line: string) => void = () => {}): Promise<UpOutcome[]> {
  const ctx = stackContext(config, say);
  await ensureDirs(ctx);
  return withLock(ctx.paths.lockFile, 15 * 60_000, async () => {
    const claims = COMPONENTS.flatMap((c) => c.ports(ctx));
    const dup = duplicatePorts(claims)[0];
    if (dup) throw new ConfigError(`port ${dup.port} is configured for both ${dup.components.join(' and ')}`);

    const running = new Map<string, number>();
    for (const c of COMPONENTS) {
      const pid = await c.runningPid(ctx);
      if (pid !== undefined) running.set(c.name, pid);
    }
    // Every port about to be bound, and every tool about to be needed, is checked before
    // anything is installed or started.
    const toStart = COMPONENTS.filter((c) => !running.has(c.name));
    await assertPortsFree(toStart.flatMap((c) => c.ports(ctx)));
    for (const c of toStart) await c.preflight?.(ctx);

    const outcomes: UpOutcome[] = [];
    for (const c of COMPONENTS) {
      const t0 = Date.now();
      let pid = running.get(c.name);
      let started = false;
      if (pid !== undefined) {
        // Alive: leave it alone. Not yet healthy (another `up` may have just started it): wait.
        if (!(await c.isHealthy(ctx))) await waitHealthy(ctx, c, pid);
      } else {
        await c.ensureInstalled(ctx);
        pid = await c.start(ctx);
        started = true;
        await waitHealthy(ctx, c, pid);
      }
      await c.afterHealthy?.(ctx);
      const elapsedMs = Date.now() - t0;
      say(upLine(c.name, started ? 'up' : 'already up', pid, c.mainPort(ctx), started ? elapsedMs : undefined));
      outcomes.push({ name: c.name, pid, port: c.mainPort(ctx), started, elapsedMs });
    }
    if (outcomes.every((o) => !o.started)) say('stack already up; nothing changed');
    return outcomes;
  });
}

/** Stops what this stack started (by pid file), in reverse start order. */
export async function stackDown(config: StackSettings, say: (line: string) => void = () => {}): Promise<void> {
  const ctx = stackContext(config, say);
  await ensureDirs(ctx);
  await withLock(ctx.paths.lockFile, 15 * 60_000, async () => {
    for (const c of [...COMPONENTS].reverse()) {
      const t0 = Date.now();
      const pid = await c.runningPid(ctx);
      const how = await c.stop(ctx);
      say(
        downLine(
          c.name,
          how === 'not-running' ? 'not running' : how,
          pid,
          how === 'not-running' ? undefined : Date.now() - t0,
        ),
      );
    }
  });
}

export interface StackStatus {
  stackHome: string;
  logs: string;
  components: Record<string, ComponentStatus>;
}

export async function stackStatus(config: StackSettings): Promise<StackStatus> {
  const ctx = stackContext(config);
  const components: Record<string, ComponentStatus> = {};
  for (const c of COMPONENTS) components[c.name] = await c.status(ctx);
  return { stackHome: ctx.paths.home, logs: ctx.paths.logs, components };
}
