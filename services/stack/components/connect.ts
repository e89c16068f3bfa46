/** Kafka Connect 4.1 distributed worker with the Debezium PostgreSQL connector plugin. */
import path from 'node:path';
import { StackError } from '../errors.ts';
import { ensureUnpacked, isUnpacked, requireMvn } from '../maven.ts';
import { confFile, logFile } from '../paths.ts';
import { exists, writeIfChanged } from '../procs.ts';
import { connectWorkerProperties, javaArgs, log4j2Xml, renderProperties } from '../render.ts';
import type { ComponentStatus, StackComponent, StackContext } from '../types.ts';
import { ARTIFACTS, VERSIONS } from '../versions.ts';
import { consoleLog, getJson, jvmRunningPid, jvmSpawn, jvmStop, requireJava } from './jvm.ts';
import { kafkaClasspath, kafkaPreflight } from './kafka.ts';

export const DEBEZIUM_POSTGRES_CONNECTOR = 'io.debezium.connector.postgresql.PostgresConnector';

const workerProps = (ctx: StackContext) => confFile(ctx.paths, 'connect-worker.properties');
const log4jConf = (ctx: StackContext) => confFile(ctx.paths, 'connect-log4j2.xml');
const restUrl = (ctx: StackContext) => `http://127.0.0.1:${ctx.config.ports.connect}`;

/** True when the worker's plugin list includes Debezium's PostgreSQL connector. Pure. */
export function listsDebeziumPostgres(plugins: unknown): boolean {
  return (
    Array.isArray(plugins) && plugins.some((p) => (p as { class?: unknown })?.class === DEBEZIUM_POSTGRES_CONNECTOR)
  );
}

export const connect: StackComponent = {
  name: 'connect',
  version: `${VERSIONS.kafka} + Debezium ${VERSIONS.debezium}`,
  // Two cores, a cold JVM and plugin loading: give it minutes, but poll.
  readyTimeoutMs: 300_000,

  mainPort: (ctx) => ctx.config.ports.connect,
  ports: (ctx) => [{ port: ctx.config.ports.connect, component: 'connect' }],

  runningPid: (ctx) => jvmRunningPid(ctx, 'connect'),

  async preflight(ctx) {
    await kafkaPreflight(ctx);
    if (!(await isUnpacked(ARTIFACTS.debeziumPostgresPlugin, ctx.paths.pluginDir))) await requireMvn();
  },

  async ensureInstalled(ctx) {
    await requireJava();
    await kafkaClasspath(ctx);
    await ensureUnpacked(
      ctx,
      `Debezium PostgreSQL connector ${VERSIONS.debezium}`,
      ARTIFACTS.debeziumPostgresPlugin,
      ctx.paths.pluginDir,
    );
    if (
      !(await exists(
        path.join(
          ctx.paths.pluginDir,
          'debezium-connector-postgres',
          `debezium-connector-postgres-${VERSIONS.debezium}.jar`,
        ),
      ))
    ) {
      throw new StackError(
        `the Debezium plugin archive unpacked without debezium-connector-postgres/ in ${ctx.paths.pluginDir}`,
      );
    }
    await writeIfChanged(
      workerProps(ctx),
      renderProperties(
        'Kafka Connect worker of the vecsync local stack. Written by `vecsync stack up`; edits are overwritten.',
        connectWorkerProperties({ ports: ctx.config.ports, pluginPath: ctx.paths.pluginDir }),
      ),
    );
    await writeIfChanged(
      log4jConf(ctx),
      log4j2Xml(logFile(ctx.paths, 'connect'), [
        'org.reflections',
        'org.apache.kafka.clients.consumer.ConsumerConfig',
        'org.apache.kafka.clients.producer.ProducerConfig',
        'org.apache.kafka.clients.admin.AdminClientConfig',
      ]),
    );
  },

  async start(ctx) {
    const args = javaArgs({
      component: 'connect',
      stackHome: ctx.paths.home,
      heap: { min: '256m', max: '768m' },
      systemProperties: { 'log4j2.configurationFile': log4jConf(ctx) },
      main: { classpath: await kafkaClasspath(ctx), className: 'org.apache.kafka.connect.cli.ConnectDistributed' },
      args: [workerProps(ctx)],
    });
    return jvmSpawn(ctx, 'connect', args, { cwd: ctx.paths.home, stdoutLog: consoleLog(ctx, 'connect') });
  },

  async isHealthy(ctx) {
    try {
      return listsDebeziumPostgres(await getJson(`${restUrl(ctx)}/connector-plugins`));
    } catch {
      return false;
    }
  },

  stop: (ctx) => jvmStop(ctx, 'connect', 60_000),

  async status(ctx): Promise<ComponentStatus> {
    const pid = (await jvmRunningPid(ctx, 'connect')) ?? null;
    const base: ComponentStatus = {
      name: 'connect',
      state: 'down',
      version: VERSIONS.kafka,
      port: ctx.config.ports.connect,
      pid,
      log: logFile(ctx.paths, 'connect'),
      details: {
        url: restUrl(ctx),
        debezium: VERSIONS.debezium,
        pluginPath: ctx.paths.pluginDir,
        debeziumPostgres: false,
      },
    };
    if (pid === null) return base;
    try {
      const root = (await getJson(restUrl(ctx))) as { version?: string };
      const plugins = await getJson(`${restUrl(ctx)}/connector-plugins`);
      const connectors = (await getJson(`${restUrl(ctx)}/connectors`)) as string[];
      const ok = listsDebeziumPostgres(plugins);
      return {
        ...base,
        state: ok ? 'up' : 'unhealthy',
        version: root.version ?? VERSIONS.kafka,
        details: { ...base.details, debeziumPostgres: ok, connectors },
      };
    } catch {
      return { ...base, state: 'unhealthy' };
    }
  },
};
