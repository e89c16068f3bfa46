/**
 * Guarantee 1 (at least once, idempotent) and 2 (newer wins): chunk records delivered again, out of
 * order and duplicated, and a writer whose offsets are reset to the earliest, leave the sink
 * exactly as it was.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InMessage } from '../services/adapters/kafka/message.ts';
import { createWriterService } from '../services/pipeline/writer/index.ts';
import { uniqueId } from './support/ids.ts';
import { kafkaClient, withAdmin } from './support/kafka.ts';
import {
  dump,
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  type TestPipeline,
} from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

describe('replay and redelivery', () => {
  let p: TestPipeline;
  const tenant = `tenant_${uniqueId('replay')}`;
  const topic = `test.${uniqueId('replay')}.chunks`;
  let records: InMessage[] = [];

  before(async () => {
    p = await startPipeline('replay');
    const docs = Array.from({ length: 8 }, (_, i) => ({
      tenant,
      id: `doc-${i}`,
      body: `Document ${i}. `.repeat(40 + i * 30),
      acl: ['group:eng', `user:u${i}`],
    }));
    const versions = await insertDocuments(p.source, docs);
    const latest = new Map(versions);
    // Each version is applied before the next is written: the embedder reads the current row (claim
    // check) and skips a version a newer one supersedes, and the chunk topic must hold every one.
    const applied = async (ids: string[]) => {
      for (const id of ids) await waitForVersion(p, tenant, id, latest.get(id)!);
    };
    await applied([...latest.keys()]);
    // Several versions per document, so the chunk topic holds older records to replay.
    for (const i of [0, 1, 2, 3])
      latest.set(
        `doc-${i}`,
        await updateDocument(p.source, tenant, `doc-${i}`, 'body = $3', [`Rewritten ${i}. `.repeat(20)]),
      );
    await applied(['doc-0', 'doc-1', 'doc-2', 'doc-3']);
    for (const i of [0, 1])
      latest.set(`doc-${i}`, await updateDocument(p.source, tenant, `doc-${i}`, 'title = $3', [`Title ${i}`]));
    // A deleted document: its older records must never bring it back.
    await p.source.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, 'doc-7']);
    for (const [id, version] of latest) if (id !== 'doc-7') await waitForVersion(p, tenant, id, version);
    await waitFor(async () => {
      const res = await p.source.query(
        `SELECT 1 FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 AND document_id = 'doc-7' AND tombstone`,
        [p.config.sink.name, tenant],
      );
      return res.rowCount === 1;
    });
    records = p.committed.writer.map((c) => c.message).filter((m) => m.key?.startsWith(`${tenant}:`));
    assert.ok(records.length >= 14, `expected every version's record, got ${records.length}`);
  });

  after(async () => {
    await p?.stop();
    await withAdmin(p.config.kafkaBrokers, (admin) => admin.deleteTopics({ topics: [topic] })).catch(() => undefined);
  });

  async function runWriterUntil(groupId: string, count: number) {
    const seen: string[] = [];
    const writer = await createWriterService(p.rt, {
      topics: [topic],
      groupId,
      onCommitted: (messages, outcomes) =>
        outcomes.forEach((o, i) => seen.push(`${o.kind}:${o.kind === 'done' ? o.result : ''}:${messages[i]!.key}`)),
    });
    await writer.start();
    try {
      await waitFor(() => seen.length >= count, {
        timeoutMs: 60_000,
        description: `${count} records committed (saw ${seen.length})`,
      });
    } finally {
      await writer.stop();
    }
    return seen;
  }

  test('duplicated, out-of-order delivery and a reset to the earliest offset leave the sink unchanged', async () => {
    const before = await dump(p, tenant);
    assert.ok(before.length > 0);
    assert.ok(!before.some((c) => c.document_id === 'doc-7'));
    const ledgerBefore = await p.source.query(
      'SELECT * FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 ORDER BY document_id',
      [p.config.sink.name, tenant],
    );

    // Every record twice, newest first: the worst order for a naive writer.
    const redelivery = [...records].reverse().flatMap((m) => [m, m]);
    await withAdmin(p.config.kafkaBrokers, (admin) =>
      admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] }),
    );
    const producer = kafkaClient(p.config.kafkaBrokers).producer();
    await producer.connect();
    // One partition on purpose: a strict newest-first order for every document.
    await producer.send({
      topic,
      messages: redelivery.map((m) => ({ key: m.key, value: m.value, headers: m.headers, partition: 0 })),
    });
    await producer.disconnect();

    const groupId = `test.${uniqueId('replay-writer')}`;
    const first = await runWriterUntil(groupId, redelivery.length);
    assert.ok(
      first.every((s) => s.startsWith('done:skipped:')),
      `every redelivered record is a no-op: ${first.filter((s) => !s.startsWith('done:skipped')).join(', ')}`,
    );
    assert.deepEqual(await dump(p, tenant), before);

    await withAdmin(p.config.kafkaBrokers, (admin) => admin.resetOffsets({ groupId, topic, earliest: true }));
    const second = await runWriterUntil(groupId, redelivery.length);
    assert.equal(second.length, redelivery.length);
    assert.ok(second.every((s) => s.startsWith('done:skipped:')));
    assert.deepEqual(await dump(p, tenant), before);

    const ledgerAfter = await p.source.query(
      'SELECT * FROM vecsync.sync_state WHERE sink_name = $1 AND tenant_id = $2 ORDER BY document_id',
      [p.config.sink.name, tenant],
    );
    assert.deepEqual(ledgerAfter.rows, ledgerBefore.rows, 'the ledger did not move either (applied_at included)');
  });
});
