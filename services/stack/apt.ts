/**
 * Debian packages: installing what the stack needs with the machine's own apt configuration,
 * and downloading one source package (pgvector) from another suite through a private source
 * list, so the machine's apt configuration is never changed.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DownloadSourceUnreachableError, MissingPrerequisiteError, StackError } from './errors.ts';
import { findExecutable, run, tailFile } from './procs.ts';
import type { StackContext } from './types.ts';

const DEBIAN_ARCHIVE = 'http://deb.debian.org/debian';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export async function isDebInstalled(pkg: string): Promise<boolean> {
  try {
    const { code, output } = await run('dpkg-query', ['-W', '-f=${Status}', pkg]);
    return code === 0 && output.includes('install ok installed');
  } catch {
    return false;
  }
}

async function debianReachable(timeoutMs = 10_000): Promise<{ ok: boolean; why?: string }> {
  try {
    const res = await fetch(`${DEBIAN_ARCHIVE}/dists/trixie/InRelease`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { ok: res.status < 500 };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, why: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

async function failApt(ctx: StackContext, what: string, log: string): Promise<never> {
  const reach = await debianReachable();
  if (!reach.ok)
    throw new DownloadSourceUnreachableError(
      `cannot reach the Debian archive (${DEBIAN_ARCHIVE}) to ${what}: ${reach.why ?? 'no answer'}`,
    );
  const last = (await tailFile(log, 20)).filter((l) => /^(E:|dpkg: error)/.test(l)).pop();
  throw new StackError(`apt-get failed to ${what}${last ? `: ${last}` : ''} (see ${log})`);
}

const APT_ENV = () => ({ ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
const APT_OPTS = ['-o', 'DPkg::Lock::Timeout=300'];

/** Installs the missing packages among `pkgs` (apt-get update first only if the install fails). */
export async function ensureDebs(ctx: StackContext, pkgs: readonly string[], why: string): Promise<void> {
  const missing: string[] = [];
  for (const p of pkgs) if (!(await isDebInstalled(p))) missing.push(p);
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new MissingPrerequisiteError(
      `not root: ${why} needs apt-get install ${missing.join(' ')}; run \`vecsync stack up\` as root once, or install them yourself`,
    );
  }
  const aptGet = await findExecutable('apt-get');
  if (!aptGet)
    throw new MissingPrerequisiteError(`apt-get not found: ${why} needs the Debian packages ${missing.join(' ')}`);
  const log = path.join(ctx.paths.logs, 'apt.log');
  ctx.say(`          apt-get install ${missing.join(' ')} (${why})`);
  const install = () =>
    run(aptGet, ['-y', '--no-install-recommends', '--no-upgrade', ...APT_OPTS, 'install', ...missing], {
      logFile: log,
      env: APT_ENV(),
    });
  if ((await install()).code === 0) return;
  ctx.say('          apt-get update (the package lists were stale)');
  if ((await run(aptGet, [...APT_OPTS, 'update'], { logFile: log, env: APT_ENV() })).code !== 0) {
    return failApt(ctx, 'update the package lists', log);
  }
  if ((await install()).code !== 0) return failApt(ctx, `install ${missing.join(' ')}`, log);
}

/** The text of the private source list used for `apt-get source`. Pure. */
export function privateSourceList(suite: string): string {
  return `deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${DEBIAN_ARCHIVE} ${suite} main\n`;
}

/**
 * Downloads a Debian source package from `suite` into `destDir` without touching the
 * machine's apt configuration: a source list, lists directory and cache of our own.
 * Returns the path of the downloaded .dsc.
 */
export async function downloadDebianSource(
  ctx: StackContext,
  pkg: string,
  suite: string,
  destDir: string,
): Promise<string> {
  const aptGet = await findExecutable('apt-get');
  if (!aptGet) throw new MissingPrerequisiteError(`apt-get not found: needed to download the ${pkg} source package`);
  const aptDir = ctx.paths.aptDir;
  const sourceList = path.join(aptDir, 'sources.list');
  const lists = path.join(aptDir, 'lists');
  await fs.mkdir(path.join(lists, 'partial'), { recursive: true });
  await fs.mkdir(path.join(aptDir, 'archives', 'partial'), { recursive: true });
  await fs.mkdir(destDir, { recursive: true });
  await fs.writeFile(sourceList, privateSourceList(suite));
  const opts = [
    ...APT_OPTS,
    // Files land in the stack home, which apt's unprivileged _apt user may not be able to reach.
    '-o',
    'APT::Sandbox::User=root',
    '-o',
    `Dir::Etc::SourceList=${sourceList}`,
    '-o',
    'Dir::Etc::SourceParts=/dev/null',
    '-o',
    `Dir::State::Lists=${lists}`,
    '-o',
    `Dir::Cache::Archives=${path.join(aptDir, 'archives')}`,
  ];
  const log = path.join(ctx.paths.logs, 'apt.log');
  ctx.say(`          downloading the ${pkg} source package from Debian ${suite}`);
  if ((await run(aptGet, [...opts, 'update'], { logFile: log, env: APT_ENV() })).code !== 0) {
    return failApt(ctx, `read the ${suite} source index`, log);
  }
  if (
    (await run(aptGet, [...opts, 'source', '--download-only', pkg], { logFile: log, env: APT_ENV(), cwd: destDir }))
      .code !== 0
  ) {
    return failApt(ctx, `download the ${pkg} source package`, log);
  }
  const dsc = (await fs.readdir(destDir))
    .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.dsc'))
    .sort()
    .pop();
  if (!dsc) throw new StackError(`apt-get source left no ${pkg} .dsc in ${destDir} (see ${log})`);
  return path.join(destDir, dsc);
}

/** Version from a Debian source file name such as `pgvector_0.8.0-1.dsc` (upstream part only). Pure. */
export function upstreamVersionOfDsc(fileName: string): string | undefined {
  const m = /^[^_]+_(?:\d+:)?([^-]+?)(?:-[^-]+)?\.dsc$/.exec(path.basename(fileName));
  return m?.[1];
}
