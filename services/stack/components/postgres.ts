/**
 * PostgreSQL 15 with pgvector 0.8.0: a dedicated cluster of the stack (never the machine's
 * own service), logical WAL for Debezium, loopback only. pgvector is built from Debian
 * trixie's source package, since bookworm does not package it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { StackSettings } from '../types.ts';
import { ensureDebs, downloadDebianSource, isRoot, upstreamVersionOfDsc } from '../apt.ts';
import { MissingPrerequisiteError, StackError } from '../errors.ts';
import { logFile, pgRootFor } from '../paths.ts';
import {
  exists,
  findExecutable,
  isOurProcess,
  readPidFile,
  run,
  spawnDetached,
  stopPid,
  type RunAs,
  writeIfChanged,
} from '../procs.ts';
import { pgHbaConf, postgresArgs } from '../render.ts';
import type { ComponentStatus, StackComponent, StackContext } from '../types.ts';
import { VERSIONS } from '../versions.ts';

const PG_BIN = `/usr/lib/postgresql/${VERSIONS.postgres}/bin`;
const PG_SHARE = `/usr/share/postgresql/${VERSIONS.postgres}`;
const PG_LIB = `/usr/lib/postgresql/${VERSIONS.postgres}/lib`;

/** Databases the stack creates: the pipeline's two, the registry's, and any the config URLs name on this cluster. Pure. */
export function stackDatabases(config: Pick<StackSettings, 'sourceUrl' | 'pgvectorUrl' | 'ports'>): {
  all: string[];
  vector: string[];
} {
  const onStack = (url: string): string | undefined => {
    const u = new URL(url);
    const local =
      ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && Number(u.port || 5432) === config.ports.pg;
    const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
    return local && db ? db : undefined;
  };
  const vector = [...new Set(['vecsync_vectors', onStack(config.pgvectorUrl)].filter((d): d is string => !!d))];
  const all = [
    ...new Set(['vecsync', onStack(config.sourceUrl), ...vector, 'apicurio'].filter((d): d is string => !!d)),
  ];
  return { all, vector };
}

/** `default_version` from an extension control file. Pure. */
export function controlDefaultVersion(controlText: string): string | undefined {
  return /^\s*default_version\s*=\s*'([^']+)'/m.exec(controlText)?.[1];
}

/** Quotes an SQL identifier. Pure. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

interface Layout {
  root: string;
  dataDir: string;
  socketDir: string;
  runAs: RunAs | undefined;
}

async function serverUser(): Promise<RunAs | undefined> {
  // The server refuses to run as root; as anyone else it runs as that user.
  if (!isRoot()) return undefined;
  const { code, output } = await run('getent', ['passwd', 'postgres']);
  const f = output.split(':');
  if (code !== 0 || f.length < 4) {
    throw new MissingPrerequisiteError(
      'no `postgres` OS user: PostgreSQL cannot run as root (install postgresql-15, which creates it)',
    );
  }
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

async function layout(ctx: StackContext): Promise<Layout> {
  const runAs = await serverUser();
  const { pgLink } = ctx.paths;
  let root: string;
  try {
    root = path.dirname(await fs.readlink(pgLink));
  } catch {
    await fs.mkdir(ctx.paths.data, { recursive: true });
    const reachable = runAs === undefined || (await run('test', ['-x', ctx.paths.data], { runAs })).code === 0;
    root = pgRootFor(ctx.paths.home, reachable);
  }
  return { root, dataDir: path.join(root, 'data'), socketDir: path.join(root, 'run'), runAs };
}

async function client(ctx: StackContext, database: string): Promise<pg.Client> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: ctx.config.ports.pg,
    user: 'postgres',
    database,
    connectionTimeoutMillis: 3000,
  });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function withClient<T>(ctx: StackContext, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await client(ctx, database);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

async function installedPgvector(): Promise<string | undefined> {
  const control = await fs.readFile(path.join(PG_SHARE, 'extension', 'vector.control'), 'utf8').catch(() => undefined);
  if (control === undefined || !(await exists(path.join(PG_LIB, 'vector.so')))) return undefined;
  return controlDefaultVersion(control);
}

async function buildPgvector(ctx: StackContext): Promise<void> {
  await ensureDebs(
    ctx,
    [`postgresql-server-dev-${VERSIONS.postgres}`, 'build-essential', 'dpkg-dev'],
    `building pgvector ${VERSIONS.pgvector}`,
  );
  if (!isRoot()) {
    throw new MissingPrerequisiteError(
      `not root: installing pgvector ${VERSIONS.pgvector} into ${PG_LIB} needs root; run \`vecsync stack up\` as root once`,
    );
  }
  const srcDir = ctx.paths.pgvectorSrc;
  await fs.mkdir(srcDir, { recursive: true });
  let dsc = (await fs.readdir(srcDir)).find((f) => f.endsWith('.dsc') && upstreamVersionOfDsc(f) === VERSIONS.pgvector);
  if (!dsc) {
    const got = await downloadDebianSource(ctx, 'pgvector', 'trixie', srcDir);
    if (upstreamVersionOfDsc(got) !== VERSIONS.pgvector) {
      throw new StackError(
        `Debian trixie now has ${path.basename(got)}, not pgvector ${VERSIONS.pgvector}; update VERSIONS.pgvector and docker-compose.yml together`,
      );
    }
    dsc = path.basename(got);
  }
  const tree = path.join(srcDir, `pgvector-${VERSIONS.pgvector}`);
  const log = logFile(ctx.paths, 'pgvector-build');
  ctx.say(`          building pgvector ${VERSIONS.pgvector} (log ${log})`);
  await fs.rm(tree, { recursive: true, force: true });
  const steps: Array<[string, string[]]> = [
    ['dpkg-source', ['-x', path.join(srcDir, dsc), tree]],
    ['make', ['-C', tree, '-j2', `PG_CONFIG=${PG_BIN}/pg_config`]],
    ['make', ['-C', tree, 'install', `PG_CONFIG=${PG_BIN}/pg_config`]],
  ];
  for (const [cmd, args] of steps) {
    const r = await run(cmd, args, { cwd: srcDir, logFile: log });
    if (r.code !== 0) throw new StackError(`pgvector build step \`${cmd} ${args[0]}\` failed (see ${log})`);
  }
  const now = await installedPgvector();
  if (now !== VERSIONS.pgvector)
    throw new StackError(
      `pgvector build finished but ${PG_SHARE}/extension/vector.control says ${now ?? 'nothing'} (see ${log})`,
    );
}

async function initCluster(ctx: StackContext, l: Layout): Promise<void> {
  const chown = async (p: string) => {
    if (l.runAs) await fs.chown(p, l.runAs.uid, l.runAs.gid);
  };
  for (const d of [l.root, l.socketDir]) {
    await fs.mkdir(d, { recursive: true });
    await chown(d);
  }
  if (!(await exists(path.join(l.dataDir, 'PG_VERSION')))) {
    ctx.say(`          initdb ${l.dataDir}`);
    await fs.mkdir(l.dataDir, { recursive: true, mode: 0o700 });
    await chown(l.dataDir);
    const log = logFile(ctx.paths, 'postgres');
    const r = await run(
      `${PG_BIN}/initdb`,
      ['-D', l.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale'],
      {
        runAs: l.runAs,
        cwd: l.root,
        logFile: log,
      },
    );
    if (r.code !== 0) throw new StackError(`initdb failed in ${l.dataDir} (see ${log})`);
  }
  const hba = path.join(l.dataDir, 'pg_hba.conf');
  if (await writeIfChanged(hba, pgHbaConf())) await chown(hba);
  // data/pg in the stack home always leads to the data dir, wherever the cluster lives.
  const target = await fs.readlink(ctx.paths.pgLink).catch(() => undefined);
  if (target !== l.dataDir) {
    await fs.rm(ctx.paths.pgLink, { force: true });
    await fs.symlink(l.dataDir, ctx.paths.pgLink);
  }
}

export const postgres: StackComponent = {
  name: 'postgres',
  version: `${VERSIONS.postgres} + pgvector ${VERSIONS.pgvector}`,
  readyTimeoutMs: 60_000,

  mainPort: (ctx) => ctx.config.ports.pg,
  ports: (ctx) => [{ port: ctx.config.ports.pg, component: 'postgres' }],

  async runningPid(ctx) {
    const l = await layout(ctx);
    const pid = await readPidFile(path.join(l.dataDir, 'postmaster.pid'));
    return pid !== undefined && (await isOurProcess(pid, [l.dataDir])) ? pid : undefined;
  },

  async preflight() {
    const missing: string[] = [];
    const hasServer = await exists(`${PG_BIN}/postgres`);
    if (!hasServer) missing.push(`PostgreSQL ${VERSIONS.postgres} (apt-get install postgresql-${VERSIONS.postgres})`);
    if ((await installedPgvector()) !== VERSIONS.pgvector)
      missing.push(`pgvector ${VERSIONS.pgvector} (built from source, installed into ${PG_LIB})`);
    if (missing.length > 0 && !isRoot()) {
      throw new MissingPrerequisiteError(
        `not root: installing ${missing.join(' and ')} needs root; run \`vecsync stack up\` as root once`,
      );
    }
    if (missing.length > 0 && !(await findExecutable('apt-get'))) {
      throw new MissingPrerequisiteError(`apt-get not found: needed to install ${missing.join(' and ')}`);
    }
    if (hasServer) await serverUser();
  },

  async ensureInstalled(ctx) {
    if (!(await exists(`${PG_BIN}/postgres`))) {
      await ensureDebs(ctx, [`postgresql-${VERSIONS.postgres}`], `PostgreSQL ${VERSIONS.postgres}`);
    }
    if ((await installedPgvector()) !== VERSIONS.pgvector) await buildPgvector(ctx);
    await initCluster(ctx, await layout(ctx));
  },

  async start(ctx) {
    const l = await layout(ctx);
    return spawnDetached({
      command: `${PG_BIN}/postgres`,
      args: postgresArgs({ dataDir: l.dataDir, socketDir: l.socketDir, port: ctx.config.ports.pg }),
      logFile: logFile(ctx.paths, 'postgres'),
      cwd: l.root,
      runAs: l.runAs,
    });
  },

  async isHealthy(ctx) {
    try {
      return await withClient(ctx, 'postgres', async (c) => (await c.query('select 1 as ok')).rows[0]?.ok === 1);
    } catch {
      return false;
    }
  },

  async afterHealthy(ctx) {
    const { all, vector } = stackDatabases(ctx.config);
    await withClient(ctx, 'postgres', async (c) => {
      const existing = new Set(
        (await c.query<{ datname: string }>('select datname from pg_database')).rows.map((r) => r.datname),
      );
      for (const db of all) if (!existing.has(db)) await c.query(`create database ${quoteIdent(db)}`);
    });
    for (const db of vector) await withClient(ctx, db, (c) => c.query('create extension if not exists vector'));
  },

  async stop(ctx) {
    const pid = await this.runningPid(ctx);
    if (pid === undefined) return 'not-running';
    const l = await layout(ctx);
    const r = await run(`${PG_BIN}/pg_ctl`, ['stop', '-D', l.dataDir, '-m', 'fast', '-w', '-t', '60'], {
      runAs: l.runAs,
      cwd: l.root,
      logFile: logFile(ctx.paths, 'postgres'),
    });
    if (r.code === 0) return 'stopped';
    return (await stopPid(pid, 30_000)) === 'killed' ? 'killed' : 'stopped';
  },

  async status(ctx): Promise<ComponentStatus> {
    const l = await layout(ctx);
    const pid = (await this.runningPid(ctx)) ?? null;
    const base: ComponentStatus = {
      name: 'postgres',
      state: 'down',
      version: VERSIONS.postgres,
      port: ctx.config.ports.pg,
      pid,
      log: logFile(ctx.paths, 'postgres'),
      // pgvector: the extension's version in the sink database (null when down or not created);
      // pgvectorInstalled: what the server's extension directory offers.
      details: {
        dataDir: l.dataDir,
        socketDir: l.socketDir,
        pgvector: null,
        pgvectorInstalled: (await installedPgvector()) ?? null,
        walLevel: null,
      },
    };
    if (pid === null) return base;
    try {
      const vectorDb = stackDatabases(ctx.config).vector[0] ?? 'vecsync_vectors';
      const server = await withClient(ctx, 'postgres', async (c) => {
        const r = await c.query<{ v: string; wal: string; keep: string }>(
          "select current_setting('server_version') v, current_setting('wal_level') wal, current_setting('max_slot_wal_keep_size') keep",
        );
        return r.rows[0];
      });
      const pgvector = await withClient(ctx, vectorDb, async (c) => {
        const r = await c.query<{ extversion: string }>("select extversion from pg_extension where extname = 'vector'");
        return r.rows[0]?.extversion ?? null;
      }).catch(() => null);
      return {
        ...base,
        state: 'up',
        version: server?.v.split(' ')[0] ?? VERSIONS.postgres,
        details: {
          ...base.details,
          pgvector,
          pgvectorDatabase: vectorDb,
          walLevel: server?.wal ?? null,
          maxSlotWalKeepSize: server?.keep ?? null,
        },
      };
    } catch {
      return { ...base, state: 'unhealthy' };
    }
  },
};
