/**
 * `vecsync dlq list|replay`: events dead-lettered because of a cause that is later fixed (an
 * embedding model that was not registered yet) are listed with their reason, replayed once fixed,
 * applied, and a second replay puts nothing back twice.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { provisionTopics } from '../services/adapters/kafka/admin.ts';
import { DLQ_MAX_MESSAGE_BYTES, sendDeadLetters } from '../services/adapters/kafka/dlq.ts';
import { topicsFor } from '../services/adapters/kafka/topics.ts';
import { listDeadLetters, replayDeadLetters, type DeadLetterReport } from '../services/ops/dlq/index.ts';
import { headerOf, readToEnd, withAdmin } from './support/kafka.ts';
import { uniqueId } from './support/ids.ts';
import { insertDocuments, startPipeline, type TestPipeline } from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');

async function vecsync(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args], {
    env: process.env,
    maxBuffer: 1 << 26,
  });
  return stdout;
}

describe('dead-letter list and replay', () => {
  const tenant = `tenant_${uniqueId('dlq')}`;
  // A model of this test alone, registered retired once the test "fixes" the cause; until then
  // the embedder that serves it dead-letters its events as unknown_model.
  const model = { name: `late-${uniqueId('m').replace(/_/g, '-')}`, version: 1 };
  const modelKeyOf = `${model.name}.v${model.version}`;
  let p: TestPipeline;

  before(async () => {
    p = await startPipeline('dlq', {
      env: { VECSYNC_EMBEDDING_MODEL: model.name, VECSYNC_EMBEDDING_VERSION: String(model.version) },
    });
  });
  after(async () => {
    await p?.source.query('DELETE FROM vecsync.embedding_models WHERE name = $1', [model.name]).catch(() => undefined);
    await p?.stop();
  });

  test('lists dead letters by reason, replays them once the cause is fixed, and never twice', async () => {
    const docs = Array.from({ length: 4 }, (_, i) => ({
      tenant,
      id: `d${i}`,
      body: `Dead letter ${i} ${tenant}.`,
      acl: ['g'],
    }));
    await insertDocuments(p.source, docs);
    await p.source.query(
      `SELECT vecsync.enqueue_upsert(d, 'bulk', $2, $3) FROM vecsync.documents d WHERE tenant_id = $1`,
      [tenant, model.name, model.version],
    );
    await waitFor(
      () =>
        p.committed.embedder.filter((c) => c.message.key?.startsWith(`${tenant}:`) && c.outcome.kind === 'dead')
          .length >= docs.length,
      { timeoutMs: 60_000, description: 'the events were dead-lettered' },
    );
    const listed = JSON.parse(await vecsync(['dlq', 'list', '--json', '--tenant', tenant])) as DeadLetterReport;
    assert.equal(listed.total, docs.length);
    assert.deepEqual(listed.by_reason, { unknown_model: docs.length });
    assert.deepEqual(listed.by_service, { embedder: docs.length });
    assert.ok(
      listed.items.every((i) => i.original_topic === p.rt.topics.lane('bulk') && i.attempts >= 1 && !i.replayed),
    );
    const failed = await p.source.query<{ status: string; error: string }>(
      `SELECT status, error FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 AND lane = 'bulk'`,
      [tenant],
    );
    assert.ok(
      failed.rows.every((r) => r.status === 'failed' && r.error.startsWith('unknown_model')),
      JSON.stringify(failed.rows),
    );

    // Fix the cause, then replay: each event is applied.
    await p.source.query(
      `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state)
       VALUES ($1, $2, 384, 'recursive-char', 1, $3, $4, 'retired')`,
      [model.name, model.version, p.config.chunking.size, p.config.chunking.overlap],
    );
    const first = JSON.parse(
      await vecsync(['dlq', 'replay', '--service', 'embedder', '--tenant', tenant, '--all', '--json']),
    ) as {
      replayed: number;
    };
    assert.equal(first.replayed, docs.length);
    await waitFor(
      async () => {
        const res = await p.source.query(
          `SELECT 1 FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND model_key = $3 AND version > 0`,
          [p.config.sink.name, tenant, modelKeyOf],
        );
        return res.rowCount === docs.length;
      },
      { timeoutMs: 60_000, description: 'replayed events applied' },
    );
    const processed = await p.source.query<{ status: string }>(
      `SELECT status FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 AND lane = 'bulk'`,
      [tenant],
    );
    assert.ok(processed.rows.every((r) => r.status === 'processed'));

    // Safe to run twice: nothing is put back again, and nothing is pending any more.
    const second = JSON.parse(
      await vecsync(['dlq', 'replay', '--service', 'embedder', '--tenant', tenant, '--all', '--json']),
    ) as {
      replayed: number;
      alreadyReplayed: number;
    };
    assert.deepEqual(second, { replayed: 0, alreadyReplayed: docs.length });
    const after = JSON.parse(await vecsync(['dlq', 'list', '--json', '--tenant', tenant])) as DeadLetterReport;
    assert.equal(after.total, 0);
    const withReplayed = JSON.parse(
      await vecsync(['dlq', 'list', '--json', '--all', '--tenant', tenant]),
    ) as DeadLetterReport;
    assert.equal(withReplayed.total, docs.length);
    assert.ok(withReplayed.items.every((i) => i.replayed));
  });
});

describe('replay of a dead letter stored as a reference', () => {
  // Topics of this test alone: a DLQ topic under a prefix of its own and an "original" topic.
  const prefix = `test.dlqref.${uniqueId('p')}`;
  const topics = topicsFor(prefix);
  const original = `${prefix}.original`;
  const tenant = `tenant_${uniqueId('dlqref')}`;
  let p: TestPipeline;

  before(async () => {
    p = await startPipeline('dlqref', { services: [] });
    await provisionTopics(p.rt.kafka, [
      { topic: original, partitions: 1, configs: {} },
      { topic: topics.dlq('writer'), partitions: 1, configs: {} },
    ]);
  });
  after(async () => {
    await withAdmin(p.config.kafkaBrokers, (admin) =>
      admin.deleteTopics({ topics: [original, topics.dlq('writer')] }),
    ).catch(() => undefined);
    await p?.stop();
  });

  /** Dead-letters `message` through the runner's own DLQ producer; a value over the DLQ budget becomes a reference. */
  async function deadLetter(offset: string, size: number): Promise<void> {
    const message = {
      topic: original,
      partition: 0,
      offset,
      key: `${tenant}:doc`,
      // Only its size matters here: the reference points at the original in its topic.
      value: Buffer.alloc(size),
      headers: { trace: 'kept' },
      timestamp: Date.now(),
    };
    const now = new Date();
    await sendDeadLetters(p.rt.producer, topics.dlq('writer'), 'writer', 'g', [
      { message, error: new Error('sink refused it'), attempts: 1, firstFailure: now, lastFailure: now },
    ]);
  }

  test('puts the original back, read from its topic; a reference the topic no longer holds names the repair', async () => {
    await p.rt.producer.send(original, [
      { key: `${tenant}:doc`, value: Buffer.from('the original value'), headers: {} },
    ]);
    const [end] = await withAdmin(p.config.kafkaBrokers, (admin) => admin.fetchTopicOffsets(original));
    const at = (BigInt(end!.high) - 1n).toString();
    await deadLetter(at, DLQ_MAX_MESSAGE_BYTES + 1);

    const listed = await listDeadLetters(p.rt.kafka, p.source, topics, { service: 'writer' });
    assert.equal(listed.total, 1);
    assert.equal(listed.items[0]!.value_omitted_bytes, DLQ_MAX_MESSAGE_BYTES + 1);

    const result = await replayDeadLetters(p.rt.kafka, p.source, p.rt.producer, topics, { service: 'writer' });
    assert.deepEqual(result, { replayed: 1, alreadyReplayed: 0 });
    const messages = await readToEnd({ brokers: p.config.kafkaBrokers, topics: [original] });
    assert.equal(messages.length, 2);
    assert.equal(messages[1]!.value?.toString('utf8'), 'the original value');
    assert.equal(headerOf(messages[1]!, 'trace'), 'kept');

    // A reference past what the topic holds (retention deleted it, in production).
    await deadLetter('999', DLQ_MAX_MESSAGE_BYTES + 1);
    await assert.rejects(
      replayDeadLetters(p.rt.kafka, p.source, p.rt.producer, topics, { service: 'writer' }),
      (error: Error) =>
        /no longer holds it/.test(error.message) &&
        error.message.includes(`vecsync reconcile --repair --tenant ${tenant}`),
    );
  });
});
