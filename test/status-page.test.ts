/**
 * The status page (issue 14, item 5) in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core; no browser is downloaded). `vecsync ui` serves it; every figure it shows is
 * compared with `vecsync status --json` run beside it. `vecsync run` serves the same page on its
 * metrics port, and `GET /healthz` answers 200 while its consumers run and 503 otherwise.
 * A screenshot is kept as a test artifact (test/artifacts/status-page.png, not committed).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { chromium, type BrowserContext } from 'playwright-core';
import { loadConfig, type Config } from '../services/config/index.ts';
import { Ledger } from '../services/adapters/postgres/ledger.ts';
import { healthState, registerHealthCheck, startMetricsServer } from '../services/adapters/telemetry/metrics.ts';
import { saveReconcileResults } from '../services/pipeline/reconciler/results.ts';
import type { PipelineStatus } from '../services/ops/status/index.ts';
import { ensureStack } from './support/stack.ts';
import { groupAtEnd, testSinkName } from './support/pipeline.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { uniqueId } from './support/ids.ts';
import { waitFor } from './support/wait.ts';
import { ensureVectorStatusSchema } from './support/vector-status-schema.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/vecsync.mjs');
const SCREENSHOT = path.join(ROOT, 'test/artifacts/status-page.png');
const MODEL = 'hashing-384.v1';

let config: Config;
let env: NodeJS.ProcessEnv;
let source: pg.Pool;
let browser: BrowserContext;
let profile: string;
const children: ChildProcess[] = [];
const tenant = `tenant_${uniqueId('page')}`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a vecsync command and resolves once `ready` matches its stdout or stderr. */
function start(
  args: string[],
  extraEnv: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`vecsync ${args.join(' ')} not ready: ${out.slice(-2000)}`)),
      90_000,
    );
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = out.match(ready);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`vecsync ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`)));
  });
}

async function statusJson(): Promise<PipelineStatus> {
  // Exit code 1 only means the status lists errors; the JSON is printed either way.
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'status', '--json'], { env }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
  );
  return JSON.parse(stdout) as PipelineStatus;
}

function at(obj: unknown, dotted: string): unknown {
  return dotted
    .split('.')
    .reduce<unknown>((o, k) => (o === null || o === undefined ? undefined : (o as Record<string, unknown>)[k]), obj);
}

/** Page figures are strings; JSON values are numbers, booleans, strings or null (shown as ''). */
function same(field: string, shown: string, json: unknown, ageSlackSeconds: number): boolean {
  if (json === null || json === undefined) return shown === '';
  // Ages grow between two reads (collections a few seconds apart).
  if (/age_seconds$/.test(field)) return Math.abs(Number(shown) - Number(json)) <= ageSlackSeconds;
  return shown === String(json);
}

before(async () => {
  await ensureStack();
  const sinkName = testSinkName();
  env = {
    ...process.env,
    VECSYNC_SINK_NAME: sinkName,
    VECSYNC_LOG_LEVEL: 'warn',
    VECSYNC_GROUP_PREFIX: `test.page.${sinkName}`,
  };
  config = loadConfig(env);
  await ensureVectorStatusSchema(config.sourceUrl);
  source = new pg.Pool({ connectionString: config.sourceUrl, max: 2 });
  // What this sink's ledger and reconciler would have written: 3 documents applied, and a pass that
  // found 1 of 4 source documents missing (25 % drift).
  const ledger = new Ledger(source, sinkName);
  const keys = ['a', 'b', 'c'].map((d) => ({ tenantId: tenant, documentId: d, modelKey: MODEL }));
  await ledger.withLocked(keys, async (_rows, tx) =>
    tx.record(
      keys.map((k) => ({
        ...k,
        version: 1,
        acl_version: 1,
        acl: ['alice'],
        tombstone: false,
        chunkCount: 1,
        contentHash: 'h',
      })),
      [],
    ),
  );
  await saveReconcileResults(source, { sinkName, modelKey: MODEL, mode: 'dry-run' }, [
    {
      tenant,
      sourceDocuments: 4,
      driftDocuments: 1,
      drift: { missing: 1, ghost: 0, stale: 0, acl_mismatch: 0, orphan_chunks: 0, count_mismatch: 0 },
    },
  ]);
  profile = await mkdtemp(path.join(os.tmpdir(), 'vecsync-chromium-'));
  // A fresh profile (the --user-data-dir playwright passes for a persistent context).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 1000 },
  });
});

after(async () => {
  await browser?.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  if (profile) await rm(profile, { recursive: true, force: true });
  await source?.query('DELETE FROM vecsync.sync_state WHERE sink_name = $1', [config.sink.name]);
  await source?.query('DELETE FROM vecsync.reconcile_results WHERE sink_name = $1', [config.sink.name]);
  const sinkDb = new pg.Client({ connectionString: config.sink.pgvector.url });
  await sinkDb.connect();
  await sinkDb.query('DELETE FROM vecsync_sink.document_acl WHERE sink_name = $1', [config.sink.name]);
  await sinkDb.end();
  await source?.end();
});

test('`vecsync ui` shows the numbers of `vecsync status --json`, in Chromium', async () => {
  const { match } = await start(['ui', '--port', '0'], {}, /status page: (http:\/\/\S+)/);
  const url = `${match[1]}?refresh=0`;
  const page = await browser.newPage();
  // 1. The page shows exactly the status it was rendered from (embedded as #status-data).
  await page.goto(url);
  const figures = await page.$$eval('[data-field]', (els) =>
    Object.fromEntries(els.map((e) => [e.getAttribute('data-field')!, e.getAttribute('data-value') ?? ''])),
  );
  const rendered = JSON.parse((await page.textContent('#status-data')) ?? 'null') as PipelineStatus;
  const wrong = Object.entries(figures)
    .filter(([field, shown]) => !same(field, shown, at(rendered, field), 0))
    .map(([field, shown]) => `${field}: page ${shown}, data ${JSON.stringify(at(rendered, field))}`);
  assert.deepEqual(wrong, [], 'every figure on the page is the value of its JSON path');
  // 2. That status is what `vecsync status --json` reports. Stable figures must be equal; on the
  // shared stack other engineers' work moves queue sizes, lag, WAL and the slot list between two
  // reads, so those must agree in at least one of a few paired reads.
  const volatile = /^(outbox\.\w+\.(queued|failed)|consumer_groups\.|replication_slots\.)/;
  let json = await statusJson();
  let mismatches: string[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const [, j] = await Promise.all([page.goto(url), statusJson()]);
    json = j;
    const shown = await page.$$eval('[data-field]', (els) =>
      Object.fromEntries(els.map((e) => [e.getAttribute('data-field')!, e.getAttribute('data-value') ?? ''])),
    );
    mismatches = Object.entries(shown)
      .filter(([field, value]) => !same(field, value, at(j, field), 15))
      .map(([field, value]) => `${field}: page ${value}, json ${JSON.stringify(at(j, field))}`);
    const stable = mismatches.filter((m) => !volatile.test(m));
    assert.deepEqual(stable, [], 'stable figures equal status --json');
    if (mismatches.length === 0) break;
  }
  if (mismatches.length > 0)
    console.log(`moving figures that never matched in one paired read: ${mismatches.join('; ')}`);
  assert.ok(mismatches.length <= 3, `at most a few moving figures differ: ${mismatches.join('; ')}`);
  assert.ok(json);
  // Everything the JSON has is on the page: health, lanes, groups, DLQ, slot, vectors, maintenance.
  const expected = [
    ...Object.keys(json.components).map((c) => `components.${c}.state`),
    ...Object.keys(json.outbox).flatMap((l) =>
      ['queued', 'failed', 'oldest_unapplied_age_seconds'].map((f) => `outbox.${l}.${f}`),
    ),
    ...json.consumer_groups.map((_, i) => `consumer_groups.${i}.lag`),
    ...Object.keys(json.dlq).map((s) => `dlq.${s}`),
    ...json.replication_slots.flatMap((_, i) => [
      `replication_slots.${i}.active`,
      `replication_slots.${i}.retained_wal_bytes`,
    ]),
    ...json.vector_status.flatMap((_, i) =>
      [
        'documents',
        'oldest_unapplied_age_seconds',
        'index_rows_changed_since_build',
        'drift_pct',
        'backfill_state',
      ].map((f) => `vector_status.${i}.${f}`),
    ),
    'maintenance.queued',
    'maintenance.running',
  ];
  assert.deepEqual(
    expected.filter((f) => !(f in figures)),
    [],
    'every figure of status --json is shown',
  );
  assert.ok(
    Object.keys(json.outbox).length >= 3 &&
      json.replication_slots.length > 0 &&
      Object.keys(json.components).length > 0,
  );
  // This sink's row, with the values its ledger and reconcile result give.
  assert.equal(json.vector_status.length, 1);
  assert.equal(json.vector_status[0]?.tenant_id, tenant);
  assert.equal(figures['vector_status.0.documents'], '3');
  assert.equal(figures['vector_status.0.drift_pct'], '25');
  assert.match(await page.textContent('body').then((t) => t ?? ''), new RegExp(tenant));
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`status page screenshot: ${path.relative(ROOT, SCREENSHOT)}`);
  await page.close();
});

test('GET /healthz: 503 until a registered consumer check passes, 200 while it does', async () => {
  let running = false;
  const server = await startMetricsServer('127.0.0.1', 0);
  const get = async () => (await fetch(`http://127.0.0.1:${server.port}/healthz`)).status;
  try {
    assert.equal(await get(), healthState().healthy ? 200 : 503);
    const off = registerHealthCheck('test-consumers', () => running);
    assert.equal(await get(), 503);
    running = true;
    assert.equal(await get(), healthState().healthy ? 200 : 503);
    running = false;
    assert.equal(await get(), 503);
    off();
  } finally {
    await server.close();
  }
});

test('`vecsync run` serves /healthz (200 while its consumers run) and the same status page', async () => {
  const port = await freePort();
  // The propagator's group starts at the end of the priority lane: it only sees what comes next.
  await groupAtEnd(config, `${config.groupPrefix}.${config.sink.name}.propagator`, [
    topicsFor(config.topicPrefix).lane('priority'),
  ]);
  await start(
    ['run', 'propagator'],
    { VECSYNC_METRICS_PORT: String(port), VECSYNC_LOG_LEVEL: 'info' },
    /"msg":"running"|running/,
  );
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/healthz`)).status === 200, {
    timeoutMs: 30_000,
    description: '/healthz 200',
  });
  const page = await browser.newPage();
  await page.goto(`${base}/status?refresh=0`);
  assert.equal(await page.textContent('#process-health'), 'consumers running');
  assert.ok((await page.$$('[data-field="vector_status.0.documents"]')).length === 1);
  await page.close();
  const json = (await (await fetch(`${base}/status.json`)).json()) as PipelineStatus;
  // Only this test's tenant: the propagator consumes the shared priority lane, so deletes of other
  // pipelines running meanwhile may leave tombstone-only rows of their tenants under this sink.
  assert.deepEqual(
    json.vector_status.filter((v) => v.tenant_id === tenant).map((v) => [v.tenant_id, v.documents]),
    [[tenant, 3]],
  );
});
