/**
 * Guarantee 8, pipeline side: three instances of each service (`vecsync run <service>` processes in
 * the same consumer groups) under mixed load through plain SQL (inserts, updates, ACL grants and
 * revokes, archives, hard deletes), while members join, leave (SIGTERM) and are SIGKILLed.
 *
 * Polled throughout the run, not only at the end, against what the sink's own ledger says is
 * applied (the ledger row is written after the sink acknowledged, so it is never ahead of the sink):
 *
 * - no revoked principal sees a document after the revoke is applied: a chunk whose ACL is older
 *   than the ledger's names no principal the ledger's ACL does not;
 * - no deleted document reappears: once the ledger holds a tombstone at version V, no chunk of
 *   version V or older is in the sink.
 *
 * At the end the sink matches the source, and `vecsync reconcile --json --tenant T` finds zero drift.
 * Figures (writes, kills, largest lag, convergence time) are printed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../services/config/index.ts';
import { modelKey } from '../services/domain/types.ts';
import { createRuntime } from '../services/pipeline/runtime/index.ts';
import { createSink } from '../services/adapters/sinks/index.ts';
import type { Sink } from '../services/adapters/sinks/types.ts';
import { collectStatus } from '../services/ops/status/index.ts';
import { uniqueId } from './support/ids.ts';
import { groupAtEnd, testSinkName } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');
const SERVICES = ['propagator', 'embedder', 'writer'] as const;
type ServiceName = (typeof SERVICES)[number];
const LOAD_MS = Number(process.env.VECSYNC_FLEET_LOAD_MS ?? 55_000);
const DOCS = 30;

interface Member {
  name: string;
  service: ServiceName;
  child: ChildProcess;
  log: string[];
}

describe('a fleet that changes shape: three of each service, members joining, leaving and killed', () => {
  const sinkName = testSinkName();
  const env: Record<string, string> = {
    VECSYNC_SINK_NAME: sinkName,
    VECSYNC_GROUP_PREFIX: `test.fleet.${sinkName}`,
    VECSYNC_LOG_LEVEL: 'info',
    VECSYNC_METRICS_PORT: '0',
    VECSYNC_RETRY_INITIAL_MS: '100',
    VECSYNC_RETRY_MAX_MS: '2000',
  };
  const tenant = `tenant_${uniqueId('fleet')}`;
  let config: Config;
  let source: pg.Pool;
  let sink: Sink;
  const members = new Map<string, Member>();
  let serial = 0;
  const figures = { writes: 0, kills: 0, leaves: 0, joins: 0, maxLag: 0, checks: 0, convergenceMs: 0 };
  const violations: string[] = [];

  function join(service: ServiceName): Member {
    const name = `${service}-${++serial}`;
    const log: string[] = [];
    const child = spawn(process.execPath, [BIN, 'run', service], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      log.push(d.toString('utf8'));
      if (log.length > 200) log.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const member = { name, service, child, log };
    members.set(name, member);
    return member;
  }

  async function running(member: Member): Promise<void> {
    // Generous: on a loaded machine a process takes long to load its code.
    await waitFor(() => member.log.join('').includes('"msg":"running"'), {
      timeoutMs: 240_000,
      description: `${member.name} running`,
    }).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${member.log.slice(-10).join('')}`);
    });
  }

  function stop(member: Member, signal: NodeJS.Signals): Promise<void> {
    members.delete(member.name);
    return new Promise((resolve) => {
      if (member.child.exitCode !== null || member.child.signalCode !== null) return resolve();
      member.child.once('exit', () => resolve());
      member.child.kill(signal);
    });
  }

  function alive(service: ServiceName): Member[] {
    return [...members.values()].filter((m) => m.service === service);
  }

  before(async () => {
    await ensureStack();
    config = loadConfig({ ...process.env, ...env });
    source = new pg.Pool({ connectionString: config.sourceUrl, max: 6 });
    sink = await createSink(config);
    const rt = await createRuntime(config, 'fleet-setup');
    try {
      for (const lane of ['live', 'bulk'] as const)
        await groupAtEnd(config, `${rt.groupId('embedder')}.${lane}`, [rt.topics.lane(lane)]);
      await groupAtEnd(config, rt.groupId('writer'), [rt.topics.chunks(rt.activeIndex.modelKey)]);
      await groupAtEnd(config, rt.groupId('propagator'), [rt.topics.lane('priority')]);
    } finally {
      await rt.close();
    }
    // Two of each to begin with; the third joins under load.
    const first = SERVICES.flatMap((s) => [join(s), join(s)]);
    for (const m of first) await running(m);
  });

  after(async () => {
    for (const m of [...members.values()]) await stop(m, 'SIGTERM');
    await sink?.close();
    await source?.end();
    process.stdout.write(
      `\nfleet: ${figures.writes} writes over ${(LOAD_MS / 1000).toFixed(0)} s, ${figures.joins} joins, ` +
        `${figures.leaves} graceful leaves, ${figures.kills} SIGKILLs, ${figures.checks} invariant polls, ` +
        `max consumer lag ${figures.maxLag}, converged ${(figures.convergenceMs / 1000).toFixed(1)} s after the load ended\n`,
    );
  });

  /** Random writes on the tenant, about 20 per second, until stopped. */
  function load() {
    let stopped = false;
    let n = 0;
    const done = (async () => {
      while (!stopped) {
        const doc = `d${Math.floor(Math.random() * DOCS)}`;
        const r = Math.random();
        const principal = `p${Math.floor(Math.random() * 4)}`;
        if (r < 0.35) {
          await source.query(
            `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, status)
             VALUES ($1, $2, $2, $3, 'active')
             ON CONFLICT (tenant_id, document_id) DO UPDATE SET body = excluded.body, status = 'active'`,
            [tenant, doc, `Fleet write ${n} on ${doc}. `.repeat(1 + (n % 30))],
          );
        } else if (r < 0.55) {
          await source.query(`INSERT INTO vecsync.document_acl VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
            tenant,
            doc,
            principal,
          ]);
        } else if (r < 0.75) {
          await source.query(
            `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = $2 AND principal = $3`,
            [tenant, doc, principal],
          );
        } else if (r < 0.85) {
          await source.query(
            `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = $2`,
            [tenant, doc],
          );
        } else {
          await source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2`, [tenant, doc]);
        }
        n++;
        await new Promise((resolve) => setTimeout(resolve, 50));
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

  const index = () => ({
    modelKey: modelKey(config.embedder.model, config.embedder.version),
    dimensions: config.embedder.dimensions,
  });

  /** The two safety invariants, against the ledger read first and the sink read after it. */
  async function checkInvariants(): Promise<void> {
    const ledger = await source.query<{
      document_id: string;
      version: string;
      acl_version: string;
      acl: string[];
      tombstone: boolean;
    }>(
      `SELECT document_id, version, acl_version, acl, tombstone FROM vecsync.sync_state
        WHERE sink_name = $1 AND tenant_id = $2 AND model_key = $3`,
      [sinkName, tenant, index().modelKey],
    );
    const stored = await sink.inspect(index(), tenant);
    const applied = new Map(ledger.rows.map((r) => [r.document_id, r]));
    for (const c of stored) {
      const l = applied.get(c.document_id);
      if (!l) continue;
      // A revoked principal sees the document: the chunk's ACL is older than the applied one and
      // names someone the applied ACL does not. (An older ACL without extra principals hides the
      // document from someone who should see it: a convergence problem, found at the end.)
      const revokedVisible = c.acl.filter((p) => !l.acl.includes(p));
      if (c.acl_version < Number(l.acl_version) && revokedVisible.length > 0)
        violations.push(
          `${c.document_id}#${c.chunk_index}: ACL v${c.acl_version} lets ${revokedVisible.join(',')} see it after ACL v${l.acl_version} [${l.acl.join(',')}] was applied`,
        );
      if (l.tombstone && c.document_version <= Number(l.version))
        violations.push(
          `${c.document_id}#${c.chunk_index}: v${c.document_version} visible after the delete v${l.version}`,
        );
    }
    figures.checks++;
  }

  async function sampleLag(): Promise<void> {
    const status = await collectStatus(config);
    const lag = status.consumer_groups
      .filter((g) => g.group.startsWith(env.VECSYNC_GROUP_PREFIX!))
      .reduce((n, g) => n + g.lag, 0);
    figures.maxLag = Math.max(figures.maxLag, lag);
  }

  /** Differences between the source and the sink for the tenant; empty when they match. */
  async function differences(): Promise<string[]> {
    const truth = await source.query<{ document_id: string; version: string; status: string; acl: string[] }>(
      `SELECT d.document_id, d.version, d.status, vecsync.current_acl(d.tenant_id, d.document_id) AS acl
         FROM vecsync.documents d WHERE d.tenant_id = $1`,
      [tenant],
    );
    const stored = await sink.inspect(index(), tenant);
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

  test('safety holds throughout and the fleet converges with zero drift', { timeout: 600_000 }, async () => {
    let polling = true;
    const poller = (async () => {
      let i = 0;
      while (polling) {
        await checkInvariants().catch((error: unknown) => violations.push(`poll failed: ${String(error)}`));
        if (i++ % 4 === 0) await sampleLag().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
    })();
    const generator = load();
    const t0 = Date.now();
    const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 + ms - Date.now())));
    const pick = (service: ServiceName) => {
      const list = alive(service);
      return list[Math.floor(Math.random() * list.length)]!;
    };
    // The shape changes: the third of each joins, members are killed, leave, and come back.
    const scale = LOAD_MS / 55_000;
    await at(4_000 * scale);
    const thirds = SERVICES.map((s) => join(s));
    figures.joins += thirds.length;
    await at(16_000 * scale);
    for (const s of SERVICES) {
      await stop(pick(s), 'SIGKILL');
      figures.kills++;
    }
    await at(24_000 * scale);
    await stop(pick('embedder'), 'SIGTERM');
    await stop(pick('writer'), 'SIGTERM');
    figures.leaves += 2;
    await at(30_000 * scale);
    const back = [join('embedder'), join('writer'), join('propagator'), join('embedder'), join('writer')];
    figures.joins += back.length;
    await at(42_000 * scale);
    await stop(pick('propagator'), 'SIGKILL');
    await stop(pick('writer'), 'SIGKILL');
    figures.kills += 2;
    await at(LOAD_MS);
    figures.writes = await generator.stop();
    const loadEnded = Date.now();
    let last: string[] = [];
    try {
      await waitFor(
        async () => {
          for (const m of members.values())
            if (m.child.exitCode !== null) throw new Error(`${m.name} exited with ${m.child.exitCode}`);
          last = await differences();
          return last.length === 0;
        },
        { timeoutMs: 120_000, intervalMs: 500, description: 'the sink to match the source' },
      );
    } catch (error) {
      const logs = [...members.values()].map((m) => `--- ${m.name}\n${m.log.slice(-10).join('')}`).join('\n');
      throw new Error(`${(error as Error).message}; differences: ${last.slice(0, 5).join('; ')}\n${logs}`);
    } finally {
      figures.convergenceMs = Date.now() - loadEnded;
      polling = false;
      await poller;
    }
    assert.deepEqual(violations.slice(0, 10), [], `${violations.length} safety violations while the fleet changed`);
    assert.ok(figures.checks > 20, `the invariants were polled throughout (${figures.checks} polls)`);
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'reconcile', '--json', '--tenant', tenant], {
      env: { ...process.env, ...env, VECSYNC_LOG_LEVEL: 'warn' },
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = JSON.parse(stdout) as { drift: Record<string, number>; scope?: { tenants?: unknown } };
    assert.deepEqual(report.scope?.tenants, [tenant], 'the reconciler looked at the tenant');
    const drift = Object.entries(report.drift).filter(([, n]) => n !== 0);
    assert.deepEqual(drift, [], `reconcile --json: ${stdout.slice(0, 500)}`);
  });
});
