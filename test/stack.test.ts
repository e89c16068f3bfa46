/**
 * The local stack through the CLI: `stack up` brings up PostgreSQL (pgvector 0.8.0, logical
 * WAL), Kafka, the registry and Connect; a second `up` changes nothing; a taken port is a
 * one-line error. Needs the stack (never skipped: a stack that cannot start fails the test).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../services/config/index.ts';
import { PortInUseError } from '../services/stack/errors.ts';
import { assertPortsFree } from '../services/stack/ports.ts';
import type { StackStatus } from '../services/stack/stack.ts';
import { ensureStack } from './support/stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'bin', 'vecsync.mjs');
const COMPONENT_NAMES = ['postgres', 'kafka', 'registry', 'connect'];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function vecsync(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 900_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, cwd: ROOT, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function statusJson(): Promise<StackStatus> {
  const r = await vecsync(['stack', 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StackStatus;
}

/** A server on a free loopback port, standing in for "another process holds the port". */
async function occupyFreePort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function freePort(): Promise<number> {
  const held = await occupyFreePort();
  await held.close();
  return held.port;
}

describe('vecsync stack', () => {
  before(async () => {
    // Starts the stack when it is not running (as `npm test`'s pretest already does).
    await ensureStack();
  });

  it('`stack up` reports every component up, one line each', async () => {
    const r = await vecsync(['stack', 'up']);
    assert.equal(r.code, 0, r.stderr);
    for (const name of COMPONENT_NAMES) {
      assert.match(r.stdout, new RegExp(`^${name}\\s+(up|already up)  pid \\d+  port \\d+`, 'm'));
    }
  });

  it('`stack status --json` shows all four up, pgvector 0.8.0 and logical WAL', async () => {
    const status = await statusJson();
    const config = loadConfig();
    assert.deepEqual(Object.keys(status.components).sort(), [...COMPONENT_NAMES].sort());
    for (const name of COMPONENT_NAMES) {
      const c = status.components[name];
      assert.ok(c, name);
      assert.equal(c.state, 'up', `${name} is ${c.state}`);
      assert.equal(typeof c.pid, 'number', name);
      assert.ok(c.log.startsWith(status.logs), `${name} logs under ${status.logs}`);
    }
    const pg = status.components.postgres;
    assert.equal(pg?.port, config.ports.pg);
    assert.equal(pg?.details.pgvector, '0.8.0');
    assert.equal(pg?.details.walLevel, 'logical');
    assert.equal(status.components.kafka?.port, config.ports.kafka);
    assert.equal(status.components.kafka?.version, '4.1.1');
    assert.equal(status.components.registry?.version, '3.3.3');
    assert.equal(status.components.connect?.details.debeziumPostgres, true);
  });

  it('a second `stack up` changes nothing and says so', async () => {
    const before = await statusJson();
    const r = await vecsync(['stack', 'up']);
    assert.equal(r.code, 0, r.stderr);
    for (const name of COMPONENT_NAMES) {
      const pid = before.components[name]?.pid;
      assert.match(r.stdout, new RegExp(`^${name}\\s+already up  pid ${pid}  port \\d+$`, 'm'));
    }
    assert.match(r.stdout, /nothing changed/);
    const afterUp = await statusJson();
    for (const name of COMPONENT_NAMES) assert.equal(afterUp.components[name]?.pid, before.components[name]?.pid, name);
  });

  it('`stack status` prints one line per component with its log file, exit 0', async () => {
    const r = await vecsync(['stack', 'status']);
    assert.equal(r.code, 0, r.stderr);
    for (const name of COMPONENT_NAMES) assert.match(r.stdout, new RegExp(`^${name}\\s+up\\s.*log /`, 'm'));
    assert.match(r.stdout, /pgvector 0\.8\.0 {2}wal_level logical/);
  });

  describe('a port held by another process', () => {
    let held: { port: number; close: () => Promise<void> };
    let home: string;
    before(async () => {
      held = await occupyFreePort();
      home = await fs.mkdtemp(path.join(os.tmpdir(), 'vecsync-stack-test-'));
    });
    after(async () => {
      await held.close();
      await fs.rm(home, { recursive: true, force: true });
    });

    it('is named with its component by the port check', async () => {
      await assert.rejects(assertPortsFree([{ port: held.port, component: 'kafka' }]), (err: unknown) => {
        assert.ok(err instanceof PortInUseError);
        assert.match(err.message, new RegExp(`^port ${held.port} \\(kafka\\) is already in use by another process`));
        return true;
      });
    });

    it('makes `stack up` fail with one line before anything is started', async () => {
      // A stack of its own (fresh home, other ports) whose PostgreSQL port is taken.
      const env = {
        ...process.env,
        VECSYNC_STACK_HOME: home,
        VECSYNC_PG_PORT: String(held.port),
        VECSYNC_KAFKA_PORT: String(await freePort()),
        VECSYNC_KAFKA_CONTROLLER_PORT: String(await freePort()),
        VECSYNC_REGISTRY_PORT: String(await freePort()),
        VECSYNC_CONNECT_PORT: String(await freePort()),
      };
      const r = await vecsync(['stack', 'up'], env, 120_000);
      assert.notEqual(r.code, 0);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0] ?? '',
        new RegExp(`^vecsync: port ${held.port} \\(postgres\\) is already in use by another process`),
      );
      assert.doesNotMatch(r.stdout, /\bup\b/);
    });
  });
});
