/**
 * `ensureStack()`: what every integration test calls first. It returns the endpoints of a
 * running stack, starting one if needed:
 *
 * - `VECSYNC_TEST_STACK=local` (default): the equivalent of `vecsync stack up` (idempotent; a
 *   warm call only probes health), endpoints from `loadConfig()`.
 * - `VECSYNC_TEST_STACK=testcontainers`: docker-compose.yml through testcontainers'
 *   DockerComposeEnvironment. The compose services use host networking on the local stack's
 *   ports, so the endpoints are the same `loadConfig()` ones; they are checked with the same
 *   health probes as the local stack before they are returned. (Cannot run on machines
 *   without a Docker engine, such as the vecsync build machines.)
 *
 * Never a silent skip: a stack that cannot be had is an error. `stackOrSkip(t)` lets a test
 * skip loudly on a developer machine without the stack, and fails when `CI` is set.
 */
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig, stackSettings, type Config } from '../../services/config/index.ts';
import { z } from 'zod';
import { describeError } from '../../services/domain/errors.ts';
import { COMPONENTS } from '../../services/stack/components/index.ts';
import { stackContext, stackUp } from '../../services/stack/stack.ts';
import { waitFor } from '../../services/stack/wait.ts';

export interface StackEndpoints {
  /** Which harness provided the stack. */
  kind: 'local' | 'testcontainers';
  sourceUrl: string;
  pgvectorUrl: string;
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  connectUrl: string;
}

/**
 * Switches of the test harness (not of the product, so not in the config schema):
 * VECSYNC_TEST_STACK=local|testcontainers picks the stack; VECSYNC_KEEP_STACK=false lets
 * testcontainers remove its compose project afterwards.
 */
const HARNESS = z
  .object({
    stack: z.enum(['local', 'testcontainers']).default('local'),
    keepStack: z
      .enum(['true', 'false'])
      .default('true')
      .transform((v) => v === 'true'),
  })
  .parse({
    stack: process.env.VECSYNC_TEST_STACK || undefined,
    keepStack: process.env.VECSYNC_KEEP_STACK || undefined,
  });

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function endpoints(config: Config, kind: StackEndpoints['kind']): StackEndpoints {
  return {
    kind,
    sourceUrl: config.sourceUrl,
    pgvectorUrl: config.sink.pgvector.url,
    kafkaBrokers: config.kafkaBrokers,
    schemaRegistryUrl: config.schemaRegistryUrl,
    connectUrl: config.connectUrl,
  };
}

async function localStack(config: Config): Promise<StackEndpoints> {
  await stackUp(stackSettings(config));
  return endpoints(config, 'local');
}

async function composeStack(config: Config): Promise<StackEndpoints> {
  // Imported only here: testcontainers looks for a Docker engine when used.
  const { DockerComposeEnvironment, Wait } = await import('testcontainers');
  const environment = new DockerComposeEnvironment(REPO_ROOT, 'docker-compose.yml')
    // One project for every test process: the services bind fixed host ports, so a second
    // project could not start; an existing one is reused as it is.
    .withProjectName('vecsync-stack')
    .withNoRecreate()
    .withAutoCleanup(!HARNESS.keepStack)
    .withStartupTimeout(600_000);
  for (const service of ['postgres', 'kafka', 'registry', 'connect']) {
    environment.withWaitStrategy(`${service}-1`, Wait.forHealthCheck());
  }
  await environment.up();
  // The same probes as the local stack, on the same endpoints, plus the idempotent set-up
  // (databases, pgvector extension) in case the volume predates the init script.
  const ctx = stackContext(stackSettings(config));
  for (const c of COMPONENTS) {
    await waitFor(`${c.name} (docker compose) to become healthy`, () => c.isHealthy(ctx), {
      timeoutMs: c.readyTimeoutMs,
      intervalMs: 1000,
    });
    await c.afterHealthy?.(ctx);
  }
  return endpoints(config, 'testcontainers');
}

let pending: Promise<StackEndpoints> | undefined;

/** Endpoints of a running, healthy stack (started once per test process). Throws when there is none. */
export function ensureStack(config: Config = loadConfig()): Promise<StackEndpoints> {
  pending ??= (HARNESS.stack === 'testcontainers' ? composeStack(config) : localStack(config)).catch((err: unknown) => {
    pending = undefined;
    throw new Error(`no ${HARNESS.stack} stack for the integration tests: ${describeError(err)}`, {
      cause: err,
    });
  });
  return pending;
}

/** True when running under CI, where a missing stack must fail the run, never skip it. */
export function underCi(): boolean {
  // The test harness' own switch, not application configuration: CI systems set it.
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * For tests that may run on a developer machine without the stack: returns the endpoints, or
 * skips the test with the reason printed. Under CI the error propagates and fails the test.
 */
export async function stackOrSkip(t: TestContext): Promise<StackEndpoints | undefined> {
  try {
    return await ensureStack();
  } catch (err) {
    if (underCi()) throw err;
    t.skip(`SKIPPED (no stack, CI not set): ${describeError(err)}`);
    return undefined;
  }
}
