/**
 * Apicurio Registry 3.3 (Confluent-compatible API at /apis/ccompat/v7), storing schemas in the
 * stack's PostgreSQL database `apicurio` so schema ids survive a registry restart.
 */
import path from 'node:path';
import { StackError } from '../errors.ts';
import { ensureUnpacked, isUnpacked, requireMvn } from '../maven.ts';
import { logFile } from '../paths.ts';
import { exists } from '../procs.ts';
import { javaArgs, registryManagementPort, registrySystemProperties } from '../render.ts';
import type { ComponentStatus, StackComponent, StackContext } from '../types.ts';
import { ARTIFACTS, VERSIONS } from '../versions.ts';
import { getJson, jvmRunningPid, jvmSpawn, jvmStop, requireJava } from './jvm.ts';

const baseUrl = (ctx: StackContext) => `http://127.0.0.1:${ctx.config.ports.registry}`;

/** Apicurio Registry 3.3 is compiled for Java 21 (class file version 65). */
const REGISTRY_JAVA = 21;
const registryJava = () => requireJava(REGISTRY_JAVA, `Apicurio Registry ${VERSIONS.apicurio}`);

export const registry: StackComponent = {
  name: 'registry',
  version: VERSIONS.apicurio,
  readyTimeoutMs: 180_000,

  mainPort: (ctx) => ctx.config.ports.registry,
  ports: (ctx) => [
    { port: ctx.config.ports.registry, component: 'registry' },
    { port: registryManagementPort(ctx.config.ports), component: 'registry management' },
  ],

  runningPid: (ctx) => jvmRunningPid(ctx, 'registry'),

  async preflight(ctx) {
    await registryJava();
    if (!(await isUnpacked(ARTIFACTS.apicurioApp, ctx.paths.registryInstall))) await requireMvn();
  },

  async ensureInstalled(ctx) {
    await registryJava();
    await ensureUnpacked(
      ctx,
      `Apicurio Registry ${VERSIONS.apicurio}`,
      ARTIFACTS.apicurioApp,
      ctx.paths.registryInstall,
    );
    if (!(await exists(path.join(ctx.paths.registryInstall, 'quarkus-run.jar')))) {
      throw new StackError(
        `no quarkus-run.jar at the root of ${ctx.paths.registryInstall}; Apicurio ${VERSIONS.apicurio} should place it there`,
      );
    }
  },

  async start(ctx) {
    const args = javaArgs({
      component: 'registry',
      stackHome: ctx.paths.home,
      heap: { min: '128m', max: '384m' },
      systemProperties: registrySystemProperties({
        ports: ctx.config.ports,
        managementPort: registryManagementPort(ctx.config.ports),
        tmpDir: ctx.paths.tmp,
      }),
      main: { jar: path.join(ctx.paths.registryInstall, 'quarkus-run.jar') },
    });
    return jvmSpawn(ctx, 'registry', args, { cwd: ctx.paths.registryInstall, java: await registryJava() });
  },

  async isHealthy(ctx) {
    try {
      return Array.isArray(await getJson(`${baseUrl(ctx)}/apis/ccompat/v7/subjects`));
    } catch {
      return false;
    }
  },

  stop: (ctx) => jvmStop(ctx, 'registry', 30_000),

  async status(ctx): Promise<ComponentStatus> {
    const pid = (await jvmRunningPid(ctx, 'registry')) ?? null;
    const base: ComponentStatus = {
      name: 'registry',
      state: 'down',
      version: VERSIONS.apicurio,
      port: ctx.config.ports.registry,
      pid,
      log: logFile(ctx.paths, 'registry'),
      details: {
        url: `${baseUrl(ctx)}/apis/ccompat/v7`,
        storage: `postgresql 127.0.0.1:${ctx.config.ports.pg}/apicurio`,
        managementPort: registryManagementPort(ctx.config.ports),
      },
    };
    if (pid === null) return base;
    try {
      const subjects = (await getJson(`${baseUrl(ctx)}/apis/ccompat/v7/subjects`)) as unknown[];
      const info = (await getJson(`${baseUrl(ctx)}/apis/registry/v3/system/info`).catch(() => ({}))) as {
        version?: string;
      };
      return {
        ...base,
        state: 'up',
        version: info.version ?? VERSIONS.apicurio,
        details: { ...base.details, subjects: subjects.length },
      };
    } catch {
      return { ...base, state: 'unhealthy' };
    }
  },
};
