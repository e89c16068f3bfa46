/**
 * docker-compose.yml runs what `vecsync stack up` runs: the same versions (services/stack/
 * versions.ts), the same ports (the config defaults) and the same settings (the stack's pure
 * renderers in services/stack/render.ts), translated into each image's environment conventions.
 * Differences are allowed only where listed below, each with its reason.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import {
  CONFIG_VARIABLES,
  VERSIONS,
  connectWorkerProperties,
  kafkaServerProperties,
  postgresSettings,
  registryManagementPort,
  registrySystemProperties,
  stackDatabases,
} from './support/code.ts';
import { REPO_ROOT, clone } from './support/manifests.ts';

interface ComposeService {
  image: string;
  command?: string[];
  environment?: Record<string, string | number>;
}
interface Compose {
  services: Record<string, ComposeService>;
}

const COMPOSE_FILE = path.join(REPO_ROOT, 'docker-compose.yml');
const compose = YAML.parse(readFileSync(COMPOSE_FILE, 'utf8')) as Compose;
const INIT_SQL = readFileSync(
  path.join(REPO_ROOT, 'services', 'stack', 'assets', 'compose', 'postgres-init.sql'),
  'utf8',
);

/** The local stack's ports: the config schema's defaults. */
const ports = {
  pg: Number(CONFIG_VARIABLES.VECSYNC_PG_PORT!.default),
  kafka: Number(CONFIG_VARIABLES.VECSYNC_KAFKA_PORT!.default),
  kafkaController: Number(CONFIG_VARIABLES.VECSYNC_KAFKA_CONTROLLER_PORT!.default),
  registry: Number(CONFIG_VARIABLES.VECSYNC_REGISTRY_PORT!.default),
  connect: Number(CONFIG_VARIABLES.VECSYNC_CONNECT_PORT!.default),
};

/** Settings that name paths inside the container (or the stack's own logging), not behaviour. */
const ALLOWED = {
  postgres: {
    unix_socket_directories: 'the image keeps its socket in /var/run/postgresql',
    port: 'set through PGPORT, which the image entrypoint also uses (checked below)',
  },
  kafka: { 'log.dirs': 'a volume in the container' },
  connect: { 'plugin.path': "the image's own /kafka/connect holds Debezium" },
  registry: {
    'apicurio.storage.snapshot.location': 'a temporary dir in the container',
    'java.io.tmpdir': "the image's /tmp",
  },
} as const;

/** Debezium connect image variables that are not CONNECT_*, and the worker property each sets. */
const DEBEZIUM_IMAGE_VARIABLES: Record<string, string> = {
  BOOTSTRAP_SERVERS: 'bootstrap.servers',
  GROUP_ID: 'group.id',
  CONFIG_STORAGE_TOPIC: 'config.storage.topic',
  OFFSET_STORAGE_TOPIC: 'offset.storage.topic',
  STATUS_STORAGE_TOPIC: 'status.storage.topic',
  OFFSET_FLUSH_INTERVAL_MS: 'offset.flush.interval.ms',
  KEY_CONVERTER: 'key.converter',
  VALUE_CONVERTER: 'value.converter',
  ADVERTISED_HOST_NAME: 'rest.advertised.host.name',
  ADVERTISED_PORT: 'rest.advertised.port',
};
/** Image variables with no worker property of their own (legacy REST settings, JVM heap). */
const IMAGE_ONLY = new Set([
  'REST_HOST_NAME',
  'REST_PORT',
  'HEAP_OPTS',
  'KAFKA_HEAP_OPTS',
  'CLUSTER_ID',
  'JAVA_OPTS_APPEND',
]);

const str = (v: unknown) => String(v);

function compareProperties(
  component: string,
  expected: Record<string, unknown>,
  actual: Record<string, string>,
  allowed: Record<string, string>,
): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(expected)) {
    if (key in allowed) continue;
    if (!(key in actual)) problems.push(`${component}: ${key}=${str(value)} is not set`);
    else if (actual[key] !== str(value))
      problems.push(`${component}: ${key}=${actual[key]}, the stack has ${str(value)}`);
  }
  for (const key of Object.keys(actual))
    if (!(key in expected)) problems.push(`${component}: ${key} is set but the stack does not set it`);
  return problems;
}

export function composeProblems(c: Compose): string[] {
  const problems: string[] = [];
  const svc = (name: string) => c.services[name] ?? { image: '', environment: {} };
  const env = (name: string) =>
    Object.fromEntries(Object.entries(svc(name).environment ?? {}).map(([k, v]) => [k, str(v)]));

  const images: Record<string, string> = {
    postgres: `pgvector/pgvector:${VERSIONS.pgvector}-pg${VERSIONS.postgres}`,
    kafka: `apache/kafka:${VERSIONS.kafka}`,
    registry: `apicurio/apicurio-registry:${VERSIONS.apicurio}`,
    connect: `quay.io/debezium/connect:${VERSIONS.debezium}`,
  };
  for (const [name, image] of Object.entries(images))
    if (svc(name).image !== image) problems.push(`${name}: image ${svc(name).image}, the stack runs ${image}`);

  // PostgreSQL: `-c key=value` flags.
  const pgFlags: Record<string, string> = {};
  const cmd = svc('postgres').command ?? [];
  for (let i = 0; i < cmd.length; i++) {
    if (cmd[i] !== '-c') continue;
    const [k, ...v] = String(cmd[i + 1]).split('=');
    pgFlags[k!] = v.join('=');
  }
  const pgExpected = postgresSettings({ socketDir: '/unused', port: ports.pg });
  problems.push(...compareProperties('postgres', pgExpected, pgFlags, ALLOWED.postgres));
  if (env('postgres').PGPORT !== str(ports.pg))
    problems.push(`postgres: PGPORT ${env('postgres').PGPORT} != ${ports.pg}`);
  if (env('postgres').POSTGRES_DB !== 'vecsync') problems.push('postgres: POSTGRES_DB must be vecsync');
  const { all, vector } = stackDatabases({
    sourceUrl: `postgres://postgres@127.0.0.1:${ports.pg}/vecsync`,
    pgvectorUrl: `postgres://postgres@127.0.0.1:${ports.pg}/vecsync_vectors`,
    ports: { ...ports },
  });
  for (const db of all.filter((d) => d !== env('postgres').POSTGRES_DB))
    if (!new RegExp(`CREATE DATABASE ${db};`).test(INIT_SQL)) problems.push(`postgres-init.sql does not create ${db}`);
  for (const db of vector)
    if (!new RegExp(`\\\\connect ${db}\\s+CREATE EXTENSION IF NOT EXISTS vector;`).test(INIT_SQL))
      problems.push(`postgres-init.sql does not create the vector extension in ${db}`);

  // Kafka: KAFKA_<PROPERTY_WITH_UNDERSCORES> (the apache/kafka image convention).
  const kafkaActual: Record<string, string> = {};
  for (const [k, v] of Object.entries(env('kafka'))) {
    if (IMAGE_ONLY.has(k)) continue;
    if (!k.startsWith('KAFKA_')) problems.push(`kafka: ${k} is not a KAFKA_ setting`);
    else kafkaActual[k.slice(6).toLowerCase().replace(/_/g, '.')] = v;
  }
  problems.push(
    ...compareProperties('kafka', kafkaServerProperties({ ports, logDir: '/unused' }), kafkaActual, ALLOWED.kafka),
  );

  // Connect: the Debezium image's own variables, and CONNECT_<PROPERTY>.
  const connectActual: Record<string, string> = {};
  for (const [k, v] of Object.entries(env('connect'))) {
    if (IMAGE_ONLY.has(k)) continue;
    const prop =
      DEBEZIUM_IMAGE_VARIABLES[k] ??
      (k.startsWith('CONNECT_') ? k.slice(8).toLowerCase().replace(/_/g, '.') : undefined);
    if (!prop) problems.push(`connect: ${k} is neither a Debezium image variable nor CONNECT_`);
    else if (prop in connectActual) problems.push(`connect: ${prop} is set twice`);
    else connectActual[prop] = v;
  }
  problems.push(
    ...compareProperties(
      'connect',
      connectWorkerProperties({ ports, pluginPath: '/unused' }),
      connectActual,
      ALLOWED.connect,
    ),
  );
  if (env('connect').REST_PORT !== str(ports.connect)) problems.push(`connect: REST_PORT != ${ports.connect}`);

  // Registry: Quarkus/MicroProfile environment names (upper case, every non-alphanumeric to _).
  const expectedRegistry = registrySystemProperties({
    ports,
    managementPort: registryManagementPort(ports),
    tmpDir: '/unused',
  });
  const toEnv = (p: string) => p.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  const registryActual: Record<string, string> = {};
  const byEnv = new Map(Object.keys(expectedRegistry).map((p) => [toEnv(p), p]));
  for (const [k, v] of Object.entries(env('registry'))) {
    if (IMAGE_ONLY.has(k)) continue;
    registryActual[byEnv.get(k) ?? k] = v;
  }
  problems.push(...compareProperties('registry', expectedRegistry, registryActual, ALLOWED.registry));

  // Health checks and comments aside, every loopback port in the file is one of the stack's.
  const known = new Set([...Object.values(ports), registryManagementPort(ports)].map(String));
  for (const m of YAML.stringify(c).matchAll(/127\.0\.0\.1:(\d+)/g))
    if (!known.has(m[1]!)) problems.push(`port ${m[1]} is not one of the local stack's`);
  return problems;
}

describe('docker-compose.yml equals the local stack', () => {
  it('same images, ports and settings as `vecsync stack up`', () => {
    assert.deepEqual(composeProblems(compose), []);
  });

  it('a drifted image, setting, port or database is reported', () => {
    const broken = clone(compose);
    broken.services.kafka!.image = 'apache/kafka:4.0.0';
    delete broken.services.kafka!.environment!.KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS;
    broken.services.connect!.environment!.CONNECT_OFFSET_STORAGE_PARTITIONS = '25';
    broken.services.registry!.environment!.QUARKUS_HTTP_PORT = '8080';
    broken.services.postgres!.command = broken.services.postgres!.command!.map((a) =>
      a === 'wal_level=logical' ? 'wal_level=replica' : a,
    );
    const problems = composeProblems(broken);
    assert.equal(problems.length, 5, problems.join('\n'));
  });
});
