/**
 * Layout of the stack home (`VECSYNC_STACK_HOME`). Pure: computing a path touches no disk.
 *
 *   cache/      classpath files, unpacked archives (Debezium plugin, Apicurio), pgvector source
 *   conf/       rendered config files (server.properties, worker.properties, log4j2 xml)
 *   data/       kafka/ log dirs; pg/ is the PostgreSQL data dir (or a link to it, see pgRootFor)
 *   logs/       one log per component
 *   run/        pid files and the stack lock
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { VERSIONS } from './versions.ts';

export type ComponentName = 'postgres' | 'kafka' | 'registry' | 'connect';

export interface StackPaths {
  home: string;
  cache: string;
  conf: string;
  data: string;
  logs: string;
  run: string;
  tmp: string;
  lockFile: string;
  /** Link (or directory) at `data/pg` through which operators find the PostgreSQL data dir. */
  pgLink: string;
  kafkaData: string;
  pluginDir: string;
  registryInstall: string;
  pgvectorSrc: string;
  aptDir: string;
  mavenLog: string;
}

export function stackPaths(home: string): StackPaths {
  const abs = path.resolve(home);
  const cache = path.join(abs, 'cache');
  const logs = path.join(abs, 'logs');
  return {
    home: abs,
    cache,
    conf: path.join(abs, 'conf'),
    data: path.join(abs, 'data'),
    logs,
    run: path.join(abs, 'run'),
    tmp: path.join(abs, 'tmp'),
    lockFile: path.join(abs, 'run', 'stack.lock'),
    pgLink: path.join(abs, 'data', 'pg'),
    kafkaData: path.join(abs, 'data', 'kafka'),
    pluginDir: path.join(cache, `connect-plugins-debezium-${VERSIONS.debezium}`),
    registryInstall: path.join(cache, `apicurio-registry-${VERSIONS.apicurio}`),
    pgvectorSrc: path.join(cache, 'pgvector-src'),
    aptDir: path.join(cache, 'apt'),
    mavenLog: path.join(logs, 'maven.log'),
  };
}

export function logFile(paths: StackPaths, component: ComponentName | string): string {
  return path.join(paths.logs, `${component}.log`);
}

export function pidFile(paths: StackPaths, component: ComponentName): string {
  return path.join(paths.run, `${component}.pid`);
}

export function confFile(paths: StackPaths, name: string): string {
  return path.join(paths.conf, name);
}

/**
 * Where the PostgreSQL cluster lives. The server must run as an unprivileged OS user; when
 * that user cannot reach the stack home (root's home is mode 0700), the cluster is placed in
 * a directory of its own under /var/lib, named after the stack home so two homes never share
 * one, and `data/pg` in the stack home links to it.
 */
export function pgRootFor(home: string, reachableByServerUser: boolean): string {
  const abs = path.resolve(home);
  if (reachableByServerUser) return path.join(abs, 'data', 'pg-cluster');
  const id = createHash('sha256').update(abs).digest('hex').slice(0, 10);
  return path.join('/var/lib/vecsync-stack', `pg-${id}`);
}
