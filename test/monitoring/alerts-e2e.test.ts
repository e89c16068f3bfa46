/**
 * The alert rules end to end: a real Prometheus scrapes a running pipeline (`vecsync run embedder`
 * and `vecsync run writer` as processes, plus the broker-measured group lag that the reconciler
 * exports, served here by the test process), evaluates deploy/monitoring/alerts.yml, and sends to
 * a real Alertmanager, which posts to a webhook in this test.
 *
 * Under load the writer is stopped: VecsyncSyncLagHigh fires for the writer's group. The writer is
 * restarted: the alert resolves. The rules are the shipped ones with two documented knobs turned
 * down (the sync-lag threshold and the alert's `for:`) so the test runs in well under two minutes.
 * Fire and resolve timings are printed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import client from 'prom-client';
import { loadConfig, type Config } from '../../services/config/index.ts';
import { registerGroupLagGauge } from '../../services/adapters/telemetry/group-lag.ts';
import { packageVersion } from '../../services/adapters/telemetry/metrics.ts';
import { createRuntime } from '../../services/pipeline/runtime/index.ts';
import { uniqueId } from '../support/ids.ts';
import { kafkaClient } from '../support/kafka.ts';
import { groupAtEnd, testSinkName } from '../support/pipeline.ts';
import { ensureStack, underCi } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { BINARIES, REPO, loadRules, toYaml, withKnobs } from './support.ts';

const BIN = path.join(REPO, 'bin', 'vecsync.mjs');
/** Knobs for the test (the shipped values are 5000 messages and 5m). */
const LAG_THRESHOLD = 150;
const LAG_FOR = '5s';

interface Proc {
  name: string;
  child: ChildProcess;
  log: string[];
}

interface Notification {
  at: number;
  status: string;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string> }[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function spawnProc(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const log: string[] = [];
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => {
    log.push(d.toString('utf8'));
    if (log.length > 300) log.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { name, child, log };
}

function stopProc(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    const force = setTimeout(() => p.child.kill('SIGKILL'), 12_000);
    p.child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    p.child.kill(signal);
  });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

describe('alerts end to end: Prometheus and Alertmanager against a running pipeline', () => {
  const missing = Object.values(BINARIES).filter((b) => b !== BINARIES.promtool && !existsSync(b));
  const sinkName = testSinkName();
  const prefix = `test.alerts.${sinkName}`;
  const tenant = `tenant_${uniqueId('alerts')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'vecsync-alerts-'));
  const procs = new Map<string, Proc>();
  const notifications: Notification[] = [];
  const timings: string[] = [];
  let config: Config;
  let source: pg.Pool;
  let webhook: http.Server;
  let exporter: http.Server;
  let kafkaAdmin: ReturnType<ReturnType<typeof kafkaClient>['admin']>;
  let ports: Record<'embedder' | 'writer' | 'exporter' | 'prometheus' | 'alertmanager' | 'webhook', number>;
  let env: NodeJS.ProcessEnv;
  let writerGroup: string;

  function startService(name: 'embedder' | 'writer'): void {
    procs.set(
      name,
      spawnProc(name, process.execPath, [BIN, 'run', name], {
        ...env,
        VECSYNC_METRICS_PORT: String(ports[name]),
      }),
    );
  }

  async function waitRunning(name: string): Promise<void> {
    await waitFor(
      () => {
        const p = procs.get(name)!;
        if (p.child.exitCode !== null) throw new Error(`${name} exited: ${p.log.slice(-10).join('')}`);
        return p.log.join('').includes('"msg":"running"');
      },
      { timeoutMs: 60_000, description: `${name} running` },
    );
  }

  function diagnostics(): string {
    return [...procs.values()].map((p) => `--- ${p.name}\n${p.log.slice(-15).join('').slice(-3000)}`).join('\n');
  }

  before(async () => {
    if (missing.length > 0) {
      if (underCi())
        throw new Error(`missing ${missing.join(', ')} (Debian packages prometheus, prometheus-alertmanager)`);
      return;
    }
    await ensureStack();
    ports = {
      embedder: await freePort(),
      writer: await freePort(),
      exporter: await freePort(),
      prometheus: await freePort(),
      alertmanager: await freePort(),
      webhook: await freePort(),
    };
    env = {
      ...process.env,
      VECSYNC_SINK_NAME: sinkName,
      VECSYNC_GROUP_PREFIX: prefix,
      VECSYNC_LOG_LEVEL: 'info',
      VECSYNC_RETRY_INITIAL_MS: '100',
      VECSYNC_RETRY_MAX_MS: '2000',
    };
    config = loadConfig(env);
    source = new pg.Pool({ connectionString: config.sourceUrl, max: 3 });

    // The groups start at the end of their topics: they see only what this test causes (and the
    // other tests' traffic on the shared topics from now on).
    const rt = await createRuntime(config, 'alerts-e2e-setup');
    try {
      for (const lane of ['live', 'bulk'] as const)
        await groupAtEnd(config, `${rt.groupId('embedder')}.${lane}`, [rt.topics.lane(lane)]);
      writerGroup = rt.groupId('writer');
      await groupAtEnd(config, writerGroup, [rt.topics.chunks(rt.activeIndex.modelKey)]);
    } finally {
      await rt.close();
    }

    // The group lag the reconciler exports, measured from the broker for this pipeline's groups.
    kafkaAdmin = kafkaClient(config.kafkaBrokers, 'vecsync-test-alerts-exporter').admin();
    await kafkaAdmin.connect();
    const registry = new client.Registry();
    registerGroupLagGauge(kafkaAdmin, { groupPrefix: prefix, registry });
    exporter = http.createServer((req, res) => {
      registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
        .catch((e: unknown) => res.writeHead(500).end(String(e)));
    });
    await new Promise<void>((r) => exporter.listen(ports.exporter, '127.0.0.1', r));

    webhook = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<Notification, 'at'>;
        notifications.push({ at: Date.now(), ...body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => webhook.listen(ports.webhook, '127.0.0.1', r));

    writeFileSync(
      path.join(dir, 'rules.yml'),
      toYaml(
        withKnobs(loadRules(), {
          thresholds: { sync_lag_messages: LAG_THRESHOLD },
          for: { VecsyncSyncLagHigh: LAG_FOR },
        }),
      ),
    );
    const target = (job: string, port: number) =>
      `  - job_name: ${job}\n    static_configs: [{ targets: ['127.0.0.1:${port}'] }]\n`;
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }\n` +
        `rule_files: [rules.yml]\n` +
        `alerting:\n  alertmanagers: [{ static_configs: [{ targets: ['127.0.0.1:${ports.alertmanager}'] }] }]\n` +
        `scrape_configs:\n` +
        target('vecsync-embedder', ports.embedder) +
        target('vecsync-writer', ports.writer) +
        target('vecsync-reconciler', ports.exporter),
    );
    writeFileSync(
      path.join(dir, 'alertmanager.yml'),
      `route: { receiver: webhook, group_by: [alertname, group], group_wait: 1s, group_interval: 1s, repeat_interval: 1h }\n` +
        `receivers:\n  - name: webhook\n    webhook_configs: [{ url: 'http://127.0.0.1:${ports.webhook}/', send_resolved: true }]\n`,
    );
    procs.set(
      'alertmanager',
      spawnProc('alertmanager', BINARIES.alertmanager, [
        `--config.file=${path.join(dir, 'alertmanager.yml')}`,
        `--storage.path=${path.join(dir, 'am-data')}`,
        `--web.listen-address=127.0.0.1:${ports.alertmanager}`,
        '--cluster.listen-address=',
      ]),
    );
    procs.set(
      'prometheus',
      spawnProc('prometheus', BINARIES.prometheus, [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'prom-data')}`,
        `--web.listen-address=127.0.0.1:${ports.prometheus}`,
        '--rules.alert.resend-delay=1s',
      ]),
    );
    startService('embedder');
    startService('writer');
    await waitRunning('embedder');
    await waitRunning('writer');
    await waitFor(() => fetch(`http://127.0.0.1:${ports.alertmanager}/-/ready`).then((r) => r.ok), {
      timeoutMs: 30_000,
      description: 'Alertmanager ready',
    });
    await waitFor(
      async () => {
        const t = await getJson<{ data: { activeTargets: { health: string }[] } }>(
          `http://127.0.0.1:${ports.prometheus}/api/v1/targets`,
        );
        return t.data.activeTargets.length === 3 && t.data.activeTargets.every((x) => x.health === 'up');
      },
      { timeoutMs: 30_000, description: 'Prometheus scraping all three targets' },
    );
  });

  after(async () => {
    for (const name of ['writer', 'embedder', 'prometheus', 'alertmanager']) await stopProc(procs.get(name));
    await new Promise((r) => (webhook ? webhook.close(r) : r(undefined)));
    await new Promise((r) => (exporter ? exporter.close(r) : r(undefined)));
    await kafkaAdmin?.disconnect().catch(() => undefined);
    await source?.end();
    rmSync(dir, { recursive: true, force: true });
    if (timings.length > 0) process.stdout.write(`\nalert end to end:\n${timings.join('\n')}\n`);
  });

  /** Upserts of this test's tenant, ~40 documents per second, until stopped. */
  function load() {
    let stopped = false;
    let n = 0;
    const done = (async () => {
      while (!stopped) {
        const rows = [0, 1, 2, 3].map((i) => [`d${(n + i) % 200}`, `Load ${n + i}: the writer keeps up. `.repeat(3)]);
        await source.query(
          `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, status, metadata, restricted)
           SELECT $1, d, d, b, 'active', '{}', '{}' FROM unnest($2::text[], $3::text[]) AS u(d, b)
           ON CONFLICT (tenant_id, document_id) DO UPDATE SET body = excluded.body`,
          [tenant, rows.map((r) => r[0]), rows.map((r) => r[1])],
        );
        n += rows.length;
        await new Promise((r) => setTimeout(r, 100));
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

  const mine = (a: Notification['alerts'][number]) =>
    a.labels.alertname === 'VecsyncSyncLagHigh' && a.labels.group === writerGroup;

  test('writer stopped under load: VecsyncSyncLagHigh fires; writer restarted: it resolves', async (t) => {
    if (missing.length > 0) {
      t.skip(`SKIPPED (CI not set): missing ${missing.join(', ')}`);
      return;
    }
    // Each spawned service names itself and the package version in vecsync_build_info.
    const info = await waitFor(
      async () => {
        const r = await getJson<{ data: { result: { metric: Record<string, string> }[] } }>(
          `http://127.0.0.1:${ports.prometheus}/api/v1/query?query=${encodeURIComponent('vecsync_build_info == 1')}`,
        );
        return r.data.result.length >= 2 ? r.data.result : undefined;
      },
      { timeoutMs: 15_000, description: 'vecsync_build_info scraped' },
    );
    assert.deepEqual(info.map((r) => `${r.metric.job} ${r.metric.service} ${r.metric.version}`).sort(), [
      `vecsync-embedder embedder ${packageVersion()}`,
      `vecsync-writer writer ${packageVersion()}`,
    ]);

    const generator = load();
    try {
      // With the writer running the lag stays under the threshold: nothing is sent.
      await new Promise((r) => setTimeout(r, 8_000));
      assert.equal(
        notifications.filter((n) => n.alerts.some(mine)).length,
        0,
        `the alert fired while the writer was running: ${JSON.stringify(notifications)}`,
      );

      const stoppedAt = Date.now();
      await stopProc(procs.get('writer'));
      const fired = await waitFor(
        () => notifications.find((n) => n.alerts.some((a) => mine(a) && a.status === 'firing')),
        { timeoutMs: 60_000, intervalMs: 100, description: 'VecsyncSyncLagHigh firing at the webhook' },
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}\n${diagnostics()}`);
      });
      const alert = fired.alerts.find(mine)!;
      assert.equal(alert.labels.severity, 'warning');
      // The annotation's Prometheus queries ran: failed-attempt rate and DLQ size are filled in.
      assert.match(alert.annotations.description ?? '', /^Failed attempts: .+\. Dead letters: .+\.$/);
      assert.equal(alert.annotations.runbook_url, 'docs/runbook.md#vecsyncsynclaghigh');
      timings.push(
        `  writer stopped -> firing at the webhook: ${((fired.at - stoppedAt) / 1000).toFixed(1)} s (threshold ${LAG_THRESHOLD} messages, for: ${LAG_FOR}, scrape and evaluation 1 s)`,
      );
      timings.push(`  ${alert.annotations.summary}`);

      const restartedAt = Date.now();
      startService('writer');
      await waitRunning('writer');
      const runningAt = Date.now();
      const resolved = await waitFor(
        () => notifications.find((n) => n.at > restartedAt && n.alerts.some((a) => mine(a) && a.status === 'resolved')),
        { timeoutMs: 90_000, intervalMs: 100, description: 'VecsyncSyncLagHigh resolved at the webhook' },
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}\n${diagnostics()}`);
      });
      timings.push(
        `  writer restarted -> resolved at the webhook: ${((resolved.at - restartedAt) / 1000).toFixed(1)} s (writer running after ${((runningAt - restartedAt) / 1000).toFixed(1)} s)`,
      );
    } finally {
      const writes = await generator.stop();
      timings.push(`  load: ${writes} document upserts on tenant ${tenant}`);
    }
  });
});
