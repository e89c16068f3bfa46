/** Apache Kafka 4.1, one node in KRaft combined mode (broker + controller), from Maven Central jars. */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { StackError } from '../errors.ts';
import { cachedClasspath, ensureClasspath, POM_DIR, requireMvn, type ClasspathSpec } from '../maven.ts';
import { confFile, logFile } from '../paths.ts';
import { isPortOpen } from '../ports.ts';
import { exists, run, writeIfChanged } from '../procs.ts';
import { javaArgs, kafkaServerProperties, log4j2Xml, renderProperties } from '../render.ts';
import type { ComponentStatus, StackComponent, StackContext } from '../types.ts';
import { VERSIONS } from '../versions.ts';
import { consoleLog, jvmRunningPid, jvmSpawn, jvmStop, requireJava } from './jvm.ts';

/** The broker and Connect share one classpath, as in Kafka's own libs/ directory. */
export function kafkaClasspathSpec(ctx: StackContext): ClasspathSpec {
  return {
    what: `Kafka ${VERSIONS.kafka}`,
    pom: path.join(POM_DIR, 'kafka.pom.xml'),
    properties: { 'kafka.version': VERSIONS.kafka },
    outFile: path.join(ctx.paths.cache, `kafka-${VERSIONS.kafka}.classpath`),
  };
}

export function kafkaClasspath(ctx: StackContext): Promise<string> {
  return ensureClasspath(ctx, kafkaClasspathSpec(ctx));
}

/** java 17+, and mvn when the classpath is not cached yet. Shared with Connect. */
export async function kafkaPreflight(ctx: StackContext): Promise<void> {
  await requireJava();
  if (!(await cachedClasspath(kafkaClasspathSpec(ctx)))) await requireMvn();
}

/** A random KRaft cluster id (16 bytes, base64url, as `kafka-storage random-uuid` prints). */
export function newClusterId(): string {
  return randomBytes(16).toString('base64url');
}

const serverProps = (ctx: StackContext) => confFile(ctx.paths, 'kafka-server.properties');
const log4jConf = (ctx: StackContext) => confFile(ctx.paths, 'kafka-log4j2.xml');

function describeCluster(ctx: StackContext) {
  return ctx.config.probeKafka([`127.0.0.1:${ctx.config.ports.kafka}`]);
}

export const kafka: StackComponent = {
  name: 'kafka',
  version: VERSIONS.kafka,
  readyTimeoutMs: 180_000,

  mainPort: (ctx) => ctx.config.ports.kafka,
  ports: (ctx) => [
    { port: ctx.config.ports.kafka, component: 'kafka' },
    { port: ctx.config.ports.kafkaController, component: 'kafka controller' },
  ],

  runningPid: (ctx) => jvmRunningPid(ctx, 'kafka'),
  preflight: kafkaPreflight,

  async ensureInstalled(ctx) {
    await requireJava();
    const classpath = await kafkaClasspath(ctx);
    await writeIfChanged(
      serverProps(ctx),
      renderProperties(
        'Kafka broker+controller of the vecsync local stack. Written by `vecsync stack up`; edits are overwritten.',
        kafkaServerProperties({ ports: ctx.config.ports, logDir: ctx.paths.kafkaData }),
      ),
    );
    await writeIfChanged(
      log4jConf(ctx),
      log4j2Xml(logFile(ctx.paths, 'kafka'), ['kafka.request.logger', 'state.change.logger']),
    );
    if (!(await exists(path.join(ctx.paths.kafkaData, 'meta.properties')))) {
      ctx.say(`          formatting the KRaft log dir ${ctx.paths.kafkaData}`);
      const java = await requireJava();
      const r = await run(
        java,
        [
          '-Xmx256m',
          `-Dlog4j2.configurationFile=${log4jConf(ctx)}`,
          '-cp',
          classpath,
          'kafka.tools.StorageTool',
          'format',
          '-t',
          newClusterId(),
          '-c',
          serverProps(ctx),
          '--ignore-formatted',
        ],
        { logFile: consoleLog(ctx, 'kafka'), cwd: ctx.paths.home },
      );
      if (r.code !== 0) throw new StackError(`formatting the Kafka log dir failed (see ${consoleLog(ctx, 'kafka')})`);
    }
  },

  async start(ctx) {
    const args = javaArgs({
      component: 'kafka',
      stackHome: ctx.paths.home,
      heap: { min: '256m', max: '768m' },
      systemProperties: { 'log4j2.configurationFile': log4jConf(ctx) },
      main: { classpath: await kafkaClasspath(ctx), className: 'kafka.Kafka' },
      args: [serverProps(ctx)],
    });
    return jvmSpawn(ctx, 'kafka', args, { cwd: ctx.paths.home, stdoutLog: consoleLog(ctx, 'kafka') });
  },

  async isHealthy(ctx) {
    if (!(await isPortOpen(ctx.config.ports.kafka))) return false;
    try {
      return (await describeCluster(ctx)).brokers.length > 0;
    } catch {
      return false;
    }
  },

  stop: (ctx) => jvmStop(ctx, 'kafka', 60_000),

  async status(ctx): Promise<ComponentStatus> {
    const pid = (await jvmRunningPid(ctx, 'kafka')) ?? null;
    const base: ComponentStatus = {
      name: 'kafka',
      state: 'down',
      version: VERSIONS.kafka,
      port: ctx.config.ports.kafka,
      pid,
      log: logFile(ctx.paths, 'kafka'),
      details: {
        bootstrap: `127.0.0.1:${ctx.config.ports.kafka}`,
        controllerPort: ctx.config.ports.kafkaController,
        logDir: ctx.paths.kafkaData,
      },
    };
    if (pid === null) return base;
    try {
      const cluster = await describeCluster(ctx);
      return {
        ...base,
        state: 'up',
        details: { ...base.details, clusterId: cluster.clusterId, brokers: cluster.brokers.length },
      };
    } catch {
      return { ...base, state: 'unhealthy' };
    }
  },
};
