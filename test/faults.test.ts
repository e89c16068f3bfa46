/**
 * Faults injected into the real stack under load, each ending with "nothing lost": every source
 * document matches the sink in presence, version and ACL. The services run as separate processes
 * (`vecsync run <service>`), so they can be killed; a load generator keeps writing throughout.
 * Recovery time and the largest consumer lag seen are printed per scenario.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig, stackSettings, type Config } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { createRuntime } from '../services/pipeline/runtime/index.ts';
import { createSink } from '../services/adapters/sinks/index.ts';
import type { Sink } from '../services/adapters/sinks/types.ts';
import { stackContext, stackUp } from '../services/stack/stack.ts';
import { COMPONENTS } from '../services/stack/components/index.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import { uniqueId } from './support/ids.ts';
import { groupAtEnd, testSinkName } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');
type ServiceName = 'embedder' | 'writer' | 'propagator';

interface Running {
  child: ChildProcess;
  log: string[];
}

describe('faults under load: nothing lost', () => {
  const sinkName = testSinkName();
  const env: Record<string, string> = {
    VECSYNC_EMBEDDER: 'hashing',
    VECSYNC_SINK_NAME: sinkName,
    VECSYNC_GROUP_PREFIX: `test.faults.${sinkName}`,
    // info: waitRunning looks for the "running" line.
    VECSYNC_LOG_LEVEL: 'info',
    VECSYNC_METRICS_PORT: '0',
    VECSYNC_RETRY_INITIAL_MS: '100',
    VECSYNC_RETRY_MAX_MS: '2000',
  };
  let config: Config;
  let source: pg.Pool;
  let sink: Sink;
  const services = new Map<ServiceName, Running>();
  const report: string[] = [];

  function start(name: ServiceName): void {
    const log: string[] = [];
    const child = spawn(process.execPath, [BIN, 'run', name], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      log.push(d.toString('utf8'));
      if (log.length > 200) log.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    services.set(name, { child, log });
  }

  async function waitRunning(name: ServiceName): Promise<void> {
    await waitFor(() => services.get(name)!.log.join('').includes('"msg":"running"'), {
      timeoutMs: 60_000,
      description: `${name} running`,
    });
  }

  function kill(name: ServiceName, signal: NodeJS.Signals): Promise<void> {
    const running = services.get(name)!;
    return new Promise((resolve) => {
      if (running.child.exitCode !== null) return resolve();
      running.child.once('exit', () => resolve());
      running.child.kill(signal);
    });
  }

  before(async () => {
    await ensureStack();
    config = loadConfig({ ...process.env, ...env });
    source = new pg.Pool({ connectionString: config.sourceUrl, max: 4 });
    // An idle client losing its connection during the PostgreSQL restart must not crash the test.
    source.on('error', () => undefined);
    sink = await createSink(config);
    const rt = await createRuntime(config, 'faults-setup');
    try {
      for (const lane of ['live', 'bulk'] as const)
        await groupAtEnd(config, `${rt.groupId('embedder')}.${lane}`, [rt.topics.lane(lane)]);
      await groupAtEnd(config, rt.groupId('writer'), [rt.topics.chunks(rt.activeIndex.modelKey)]);
      await groupAtEnd(config, rt.groupId('propagator'), [rt.topics.lane('priority')]);
    } finally {
      await rt.close();
    }
    for (const name of ['propagator', 'embedder', 'writer'] as const) start(name);
    for (const name of ['propagator', 'embedder', 'writer'] as const) await waitRunning(name);
  });

  after(async () => {
    for (const name of services.keys()) await kill(name, 'SIGTERM');
    await sink?.close();
    await source?.end();
    process.stdout.write(`\nfault scenarios:\n${report.join('\n')}\n`);
  });

  /** Random writes on a tenant, ~30 per second, until stopped; failed writes (database down) are skipped. */
  function load(tenant: string) {
    let stopped = false;
    let n = 0;
    const done = (async () => {
      while (!stopped) {
        const doc = `d${Math.floor(Math.random() * 40)}`;
        const r = Math.random();
        try {
          if (r < 0.45) {
            await source.query(
              `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, status, metadata, restricted)
               VALUES ($1, $2, $2, $3, 'active', '{}', '{}')
               ON CONFLICT (tenant_id, document_id) DO UPDATE SET body = excluded.body, status = 'active'`,
              [tenant, doc, `Load ${n} on ${doc}. `.repeat(1 + (n % 40))],
            );
          } else if (r < 0.65) {
            await source.query(`INSERT INTO vecsync.document_acl VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
              tenant,
              doc,
              `p${n % 5}`,
            ]);
          } else if (r < 0.8) {
            await source.query(
              `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = $2 AND principal = $3`,
              [tenant, doc, `p${n % 5}`],
            );
          } else if (r < 0.9) {
            await source.query(
              `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = $2`,
              [tenant, doc],
            );
          } else {
            await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2`, [
              tenant,
              doc,
            ]);
          }
        } catch {
          // The fault may make the source unavailable; the application would retry, we move on.
        }
        n++;
        await new Promise((r) => setTimeout(r, 33));
      }
    })();
    return {
      async stop() {
        stopped = true;
        await done;
        return n;
      },
    };
  }

  /** Differences between the source (the truth) and the sink for a tenant; empty when nothing is lost. */
  async function differences(tenant: string): Promise<string[]> {
    const truth = await source.query<{ document_id: string; version: string; status: string; acl: string[] }>(
      `SELECT d.document_id, d.version, d.status,
              coalesce(array_agg(a.principal ORDER BY a.principal) FILTER (WHERE a.principal IS NOT NULL), '{}') AS acl
         FROM vecsync.documents d
         LEFT JOIN vecsync.document_acl a ON a.tenant_id = d.tenant_id AND a.document_id = d.document_id
        WHERE d.tenant_id = $1 GROUP BY d.document_id, d.version, d.status`,
      [tenant],
    );
    const stored = await sink.inspect(
      { modelKey: modelKey(config.embedder.model, config.embedder.version), dimensions: config.embedder.dimensions },
      tenant,
    );
    const byDoc = new Map<string, typeof stored>();
    for (const c of stored) byDoc.set(c.document_id, [...(byDoc.get(c.document_id) ?? []), c]);
    const out: string[] = [];
    for (const d of truth.rows) {
      const chunks = byDoc.get(d.document_id) ?? [];
      byDoc.delete(d.document_id);
      if (d.status !== 'active') {
        if (chunks.length > 0) out.push(`${d.document_id}: ${d.status} but ${chunks.length} chunks in the sink`);
        continue;
      }
      if (chunks.length === 0) out.push(`${d.document_id}: missing`);
      else if (chunks.some((c) => c.document_version !== Number(d.version)))
        out.push(`${d.document_id}: stale (want v${d.version})`);
      else if (chunks.some((c) => [...c.acl].sort().join(',') !== d.acl.join(',')))
        out.push(`${d.document_id}: ACL ${chunks[0]!.acl} != ${d.acl}`);
    }
    for (const doc of byDoc.keys()) out.push(`${doc}: hard-deleted but still in the sink`);
    return out;
  }

  async function maxLagDuring<T>(work: () => Promise<T>): Promise<{ result: T; maxLag: number }> {
    let maxLag = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const status = await collectStatus(config);
          const lag = status.consumer_groups
            .filter((g) => g.group.startsWith(env.VECSYNC_GROUP_PREFIX!))
            .reduce((n, g) => n + g.lag, 0);
          maxLag = Math.max(maxLag, lag);
        } catch {
          // Kafka itself may be the fault.
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      const result = await work();
      return { result, maxLag };
    } finally {
      sampling = false;
      await sampler;
    }
  }

  /**
   * Runs load, injects `fault` after a few seconds (the load goes on during it), stops the load when
   * the fault ends, and measures the recovery: from the fault's end until nothing is lost.
   */
  async function scenario(name: string, fault: () => Promise<void>): Promise<void> {
    const tenant = `tenant_${uniqueId(`fault_${name}`)}`;
    const { result, maxLag } = await maxLagDuring(async () => {
      const generator = load(tenant);
      await new Promise((r) => setTimeout(r, 3000));
      await fault();
      const faultEnded = Date.now();
      const writes = await generator.stop();
      let last: string[] = [];
      await waitFor(
        async () => {
          // A service that died (rather than recovering) is a failure, not something to wait out.
          for (const [s, r] of services)
            if (r.child.exitCode !== null) throw new Error(`${s} exited with ${r.child.exitCode}`);
          last = await differences(tenant);
          return last.length === 0;
        },
        { timeoutMs: 180_000, intervalMs: 500, description: `${name}: nothing lost` },
      ).catch((error: unknown) => {
        const logs = [...services.entries()].map(([s, r]) => `--- ${s}\n${r.log.slice(-20).join('')}`).join('\n');
        throw new Error(`${(error as Error).message}; differences: ${last.slice(0, 5).join('; ')}\n${logs}`);
      });
      return { writes, recoveryMs: Date.now() - faultEnded };
    });
    const dead = await source.query<{ n: string }>(
      `SELECT count(*) AS n FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 AND status = 'failed'`,
      [tenant],
    );
    report.push(
      `  ${name}: ${result.writes} writes, recovered (nothing lost) ${(result.recoveryMs / 1000).toFixed(1)} s after the fault ended, max consumer lag ${maxLag}, dead-lettered ${dead.rows[0]!.n}`,
    );
    assert.equal(Number(dead.rows[0]!.n), 0, 'a transient fault dead-letters nothing');
  }

  test('the sink database is unavailable for 30 s', async () => {
    const admin = new pg.Client({ connectionString: config.sourceUrl });
    await admin.connect();
    const db = new URL(config.sink.pgvector.url).pathname.slice(1);
    try {
      await scenario('sink down 30 s', async () => {
        await admin.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS false`);
        await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [db],
        );
        await new Promise((r) => setTimeout(r, 30_000));
        await admin.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS true`);
      });
    } finally {
      await admin.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
      await admin.end();
    }
  });

  for (const name of ['writer', 'embedder'] as const) {
    test(`the ${name} is killed with SIGKILL mid-batch and restarted`, async () => {
      await scenario(`${name} SIGKILL`, async () => {
        await kill(name, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 2000));
        start(name);
        await waitRunning(name);
      });
    });
  }

  for (const component of ['kafka', 'connect', 'postgres'] as const) {
    test(`${component === 'postgres' ? 'the source PostgreSQL' : component === 'kafka' ? 'the Kafka broker' : 'Kafka Connect'} restarts under load`, async () => {
      await scenario(`${component} restart`, async () => {
        const ctx = stackContext(stackSettings(config));
        const c = COMPONENTS.find((x) => x.name === component)!;
        await c.stop(ctx);
        await new Promise((r) => setTimeout(r, 2000));
        // On a loaded machine the first health probe after a restart can time out; `up` is
        // idempotent, so it is simply asked again.
        await waitFor(() => stackUp(stackSettings(config)).then(() => true), {
          timeoutMs: 300_000,
          intervalMs: 2000,
          description: `${component} back up`,
        });
      });
    });
  }
});
