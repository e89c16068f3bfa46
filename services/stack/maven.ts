/**
 * Jars and archives from Maven Central, through the machine's `mvn` and its ~/.m2 cache.
 * Results are cached under the stack home (a classpath file, an unpacked directory with a
 * completion marker), so a warm `up` never runs Maven.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DownloadSourceUnreachableError, MissingPrerequisiteError, StackError } from './errors.ts';
import { exists, findExecutable, run, tailFile } from './procs.ts';
import type { StackContext } from './types.ts';
import { VERSIONS } from './versions.ts';
import { assetPath } from '../domain/assets.ts';

const MAVEN_CENTRAL = 'https://repo.maven.apache.org/maven2/';
const DEPENDENCY_PLUGIN = `org.apache.maven.plugins:maven-dependency-plugin:${VERSIONS.mavenDependencyPlugin}`;

/** Where the poms live. */
export const POM_DIR = assetPath('services', 'stack', 'assets', 'maven');

export async function requireMvn(): Promise<string> {
  const mvn = await findExecutable('mvn');
  if (!mvn)
    throw new MissingPrerequisiteError(
      'mvn not found on PATH: the first `stack up` needs Maven to download Kafka, Debezium and Apicurio (apt-get install maven)',
    );
  return mvn;
}

/** Is Maven Central reachable over HTTPS right now? */
export async function mavenCentralReachable(timeoutMs = 10_000): Promise<{ ok: boolean; why?: string }> {
  try {
    const res = await fetch(MAVEN_CENTRAL, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
    return { ok: res.status < 500 };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, why: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

/** Maven 3.8 prints colour resets even in batch mode. Pure. */
export function stripAnsi(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/\u001b\[[0-9;]*m/g, '');
}

async function failMaven(ctx: StackContext, what: string): Promise<never> {
  const reach = await mavenCentralReachable();
  if (!reach.ok) {
    throw new DownloadSourceUnreachableError(
      `cannot reach Maven Central (${MAVEN_CENTRAL}) to download ${what}: ${reach.why ?? 'no answer'}`,
    );
  }
  const last = (await tailFile(ctx.paths.mavenLog, 40)).map(stripAnsi).filter((l) => l.startsWith('[ERROR]'))[0];
  throw new StackError(
    `mvn failed to download ${what}${last ? `: ${last.replace(/^\[ERROR\]\s*/, '').slice(0, 300)}` : ''} (see ${ctx.paths.mavenLog})`,
  );
}

export interface ClasspathSpec {
  /** Label for messages, e.g. "kafka 4.1.1". */
  what: string;
  pom: string;
  /** `-D` properties passed to Maven (the versions, from versions.ts). */
  properties: Record<string, string>;
  outFile: string;
}

/**
 * Returns the runtime classpath of a pom, resolving it with `mvn dependency:build-classpath`
 * only when the cached file is missing, was made from another pom or properties, or names a
 * jar that is no longer in ~/.m2.
 */
async function classpathKey(spec: ClasspathSpec): Promise<string> {
  const pomText = await fs.readFile(spec.pom, 'utf8');
  return createHash('sha256').update(pomText).update(JSON.stringify(spec.properties)).digest('hex');
}

/** The cached classpath when it is still valid (same pom and properties, every jar present). */
export async function cachedClasspath(spec: ClasspathSpec): Promise<string | undefined> {
  const key = await classpathKey(spec);
  if (!(await exists(spec.outFile)) || (await fs.readFile(`${spec.outFile}.key`, 'utf8').catch(() => '')) !== key)
    return undefined;
  const classpath = (await fs.readFile(spec.outFile, 'utf8')).trim();
  const jars = classpath.split(':');
  return jars.length > 0 && (await Promise.all(jars.map(exists))).every(Boolean) ? classpath : undefined;
}

export async function ensureClasspath(ctx: StackContext, spec: ClasspathSpec): Promise<string> {
  const cached = await cachedClasspath(spec);
  if (cached) return cached;
  const key = await classpathKey(spec);
  const keyFile = `${spec.outFile}.key`;
  const mvn = await requireMvn();
  ctx.say(`          resolving ${spec.what} with Maven (first run downloads from Maven Central)`);
  await fs.mkdir(path.dirname(spec.outFile), { recursive: true });
  const tmp = `${spec.outFile}.tmp`;
  const props = Object.entries(spec.properties).map(([k, v]) => `-D${k}=${v}`);
  const result = await run(
    mvn,
    [
      '-B',
      '-q',
      '-f',
      spec.pom,
      ...props,
      `${DEPENDENCY_PLUGIN}:build-classpath`,
      `-Dmdep.outputFile=${tmp}`,
      '-Dmdep.includeScope=runtime',
    ],
    { logFile: ctx.paths.mavenLog, cwd: path.dirname(spec.outFile) },
  );
  if (result.code !== 0 || !(await exists(tmp))) return failMaven(ctx, spec.what);
  await fs.rename(tmp, spec.outFile);
  await fs.writeFile(keyFile, key);
  return (await fs.readFile(spec.outFile, 'utf8')).trim();
}

/**
 * Unpacks an archive artifact (`group:artifact:version:type:classifier`) into `dir` once.
 * The unpack goes to a temporary directory that is renamed into place, so an interrupted
 * download never looks complete.
 */
export async function isUnpacked(artifact: string, dir: string): Promise<boolean> {
  return (await fs.readFile(path.join(dir, '.vecsync-unpacked'), 'utf8').catch(() => '')) === artifact;
}

export async function ensureUnpacked(ctx: StackContext, what: string, artifact: string, dir: string): Promise<void> {
  if (await isUnpacked(artifact, dir)) return;
  const mvn = await requireMvn();
  ctx.say(`          downloading ${what} (${artifact})`);
  const tmp = `${dir}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  const result = await run(
    mvn,
    ['-B', '-q', `${DEPENDENCY_PLUGIN}:unpack`, `-Dartifact=${artifact}`, `-DoutputDirectory=${tmp}`],
    {
      logFile: ctx.paths.mavenLog,
      cwd: tmp,
    },
  );
  if (result.code !== 0) {
    await fs.rm(tmp, { recursive: true, force: true });
    return failMaven(ctx, what);
  }
  await fs.writeFile(path.join(tmp, '.vecsync-unpacked'), artifact);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
}
