/**
 * Restricted fields never leave PostgreSQL: a unique canary in `restricted` and in a metadata key
 * that is not allowlisted appears zero times in the raw bytes of every Kafka topic, in a dump of
 * the sink database, in the services' logs (at debug level) and in their metrics. Positive
 * controls prove each scan sees the document's other content.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { createRuntime } from '../services/pipeline/runtime/index.ts';
import { uniqueId } from './support/ids.ts';
import { readToEnd, withAdmin } from './support/kafka.ts';
import { groupAtEnd, insertDocuments, testSinkName } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');
const PG_DUMP = '/usr/lib/postgresql/15/bin/pg_dump';

function count(haystack: Buffer | string, needle: string): number {
  const buf = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack);
  let n = 0;
  for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at + 1)) n++;
  return n;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('restricted fields never leave PostgreSQL', () => {
  const canaryRestricted = `CANARY_R_${uniqueId('c')}`;
  const canaryMetadata = `CANARY_M_${uniqueId('c')}`;
  const visible = `VISIBLE_${uniqueId('v')}`;
  const tenant = `tenant_${uniqueId('canary')}`;
  const sinkName = testSinkName();
  const metricsPort = { value: 0 };
  const env: Record<string, string> = {};
  let child: ReturnType<typeof spawn> | undefined;
  let logs = '';

  before(async () => {
    await ensureStack();
    metricsPort.value = await freePort();
    Object.assign(env, {
      VECSYNC_EMBEDDER: 'hashing',
      VECSYNC_SINK_NAME: sinkName,
      VECSYNC_GROUP_PREFIX: `test.canary.${sinkName}`,
      VECSYNC_LOG_LEVEL: 'debug',
      VECSYNC_METRICS_PORT: String(metricsPort.value),
    });
    const config = loadConfig({ ...process.env, ...env });
    const rt = await createRuntime(config, 'canary-setup');
    try {
      await groupAtEnd(config, `${rt.groupId('embedder')}.live`, [rt.topics.lane('live')]);
      await groupAtEnd(config, `${rt.groupId('embedder')}.bulk`, [rt.topics.lane('bulk')]);
      await groupAtEnd(config, rt.groupId('writer'), [rt.topics.chunks(rt.activeIndex.modelKey)]);
      await groupAtEnd(config, rt.groupId('propagator'), [rt.topics.lane('priority')]);
    } finally {
      await rt.close();
    }
    child = spawn(process.execPath, [BIN, 'run', 'all'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (logs += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (logs += d.toString('utf8')));
    await waitFor(() => logs.includes('"msg":"running"'), {
      timeoutMs: 60_000,
      description: 'vecsync run all is running',
    });
  });

  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  test('zero canaries in topics, sink dump, logs and metrics after a sync', async () => {
    const config = loadConfig({ ...process.env, ...env });
    const source = new pg.Pool({ connectionString: config.sourceUrl, max: 2 });
    try {
      const body = `${visible} incident review notes. The on-call engineer rotated the keys.`;
      const versions = await insertDocuments(source, [
        {
          tenant,
          id: 'doc',
          body,
          acl: ['group:sec'],
          metadata: { category: 'security', internal_note: canaryMetadata },
          restricted: { owner_ssn: canaryRestricted, note: canaryRestricted },
        },
        {
          tenant,
          id: 'other',
          body: `${visible} second document`,
          acl: ['group:sec'],
          restricted: { k: canaryRestricted },
        },
      ]);
      // Exercise the priority lane too: an ACL change and a soft delete with restricted data present.
      await source.query(`INSERT INTO vecsync.document_acl VALUES ($1, 'doc', 'user:dana')`, [tenant]);
      await source.query(
        `UPDATE vecsync.documents SET status = 'archived' WHERE tenant_id = $1 AND document_id = 'other'`,
        [tenant],
      );
      // A restricted-only change: emits nothing at all.
      await source.query(`UPDATE vecsync.documents SET restricted = $2 WHERE tenant_id = $1 AND document_id = 'doc'`, [
        tenant,
        JSON.stringify({ owner_ssn: canaryRestricted, more: canaryRestricted }),
      ]);
      await waitFor(
        async () => {
          const res = await source.query<{ document_id: string; acl: string[]; tombstone: boolean; version: string }>(
            `SELECT document_id, acl, tombstone, version FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2`,
            [sinkName, tenant],
          );
          const doc = res.rows.find((r) => r.document_id === 'doc');
          const other = res.rows.find((r) => r.document_id === 'other');
          return (
            doc && Number(doc.version) >= versions.get('doc')! && doc.acl.includes('user:dana') && other?.tombstone
          );
        },
        { timeoutMs: 60_000, description: 'the pipeline applied the documents, the ACL change and the archive' },
      );

      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort.value}/metrics`)).text();
      assert.ok(metrics.includes('vecsync_events_processed_total'), 'metrics scraped');
      assert.match(metrics, /vecsync_dlq_messages\{service="embedder"\} \d+/, 'DLQ size is a metric');

      // Graceful stop: SIGTERM finishes the batch, commits and exits within 10 s.
      const stopped = Date.now();
      const exit = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
      child!.kill('SIGTERM');
      const code = await exit;
      assert.equal(code, 0, 'clean exit on SIGTERM');
      assert.ok(Date.now() - stopped < 10_000, `exited in ${Date.now() - stopped} ms`);

      const topics = (await withAdmin(config.kafkaBrokers, (admin) => admin.listTopics())).filter(
        (t) => !t.startsWith('__'),
      );
      const messages = await readToEnd({ brokers: config.kafkaBrokers, topics, timeoutMs: 120_000 });
      const raw = Buffer.concat(
        messages.flatMap((m) => [
          m.key ?? Buffer.alloc(0),
          m.value ?? Buffer.alloc(0),
          ...Object.values(m.headers).map((h) => h ?? Buffer.alloc(0)),
        ]),
      );
      const { stdout: sinkDump } = await promisify(execFile)(PG_DUMP, ['--data-only', config.sink.pgvector.url], {
        maxBuffer: 1 << 30,
      });

      // Positive controls: each scan does see the document's permitted content.
      assert.ok(count(raw, visible) > 0, 'topics carry the document');
      assert.ok(count(sinkDump, visible) > 0, 'the sink dump holds the document');
      assert.ok(count(logs, '"level":20') > 0, 'debug logs were captured');
      assert.ok(count(raw, 'security') > 0, 'allowlisted metadata travels');

      for (const canary of [canaryRestricted, canaryMetadata]) {
        assert.equal(count(raw, canary), 0, `${canary} in Kafka topics`);
        assert.equal(count(sinkDump, canary), 0, `${canary} in the sink database`);
        assert.equal(count(logs, canary), 0, `${canary} in the service logs`);
        assert.equal(count(metrics, canary), 0, `${canary} in the metrics`);
      }
      // And it is still there in the source, where it belongs.
      const still = await source.query(
        `SELECT restricted::text AS r FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'doc'`,
        [tenant],
      );
      assert.ok(count(still.rows[0].r, canaryRestricted) > 0);
    } finally {
      await source.end();
    }
  });
});
