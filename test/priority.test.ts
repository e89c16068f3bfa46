/**
 * Deletes and permission changes on the real stack: a delete that overtakes held content upserts
 * never lets the document come back; a revoke racing a content update never leaves the revoked
 * principal able to see the document; tenants stay apart.
 */
import assert from 'node:assert/strict';
import type { Outcome } from '../services/adapters/kafka/message.ts';
import { after, before, describe, test } from 'node:test';
import { createEmbedderService } from '../services/pipeline/embedder/index.ts';
import { createEmbedder } from '../services/adapters/embedding/index.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import { uniqueId } from './support/ids.ts';
import {
  dump,
  groupAtEnd,
  insertDocuments,
  startPipeline,
  updateDocument,
  waitForVersion,
  searchIds,
  type TestPipeline,
} from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

/** The embedder a user's query goes through: the pipeline's configured one. */
const queryEmbedder = (p: TestPipeline) => createEmbedder({ ...p.config.embedder, retry: p.config.retry });

async function ledgerRow(p: TestPipeline, tenant: string, document: string) {
  const res = await p.source.query<{ version: string; acl_version: string; acl: string[]; tombstone: boolean }>(
    `SELECT version, acl_version, acl, tombstone FROM vecsync.sync_state
      WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3 AND model_key = $4`,
    [p.config.sink.name, tenant, document, p.rt.activeIndex.modelKey],
  );
  const r = res.rows[0];
  return r && { version: Number(r.version), aclVersion: Number(r.acl_version), acl: r.acl, tombstone: r.tombstone };
}

describe('a delete overtaking held content upserts (resurrection)', () => {
  let p: TestPipeline;
  let embedder: Service | undefined;
  const tenant = `tenant_${uniqueId('resurrect')}`;

  before(async () => {
    // Writer and propagator run; the embedder (the live and bulk lanes) is held until released.
    p = await startPipeline('resurrect', { services: ['propagator', 'writer'] });
    for (const lane of ['live', 'bulk'] as const) {
      await groupAtEnd(p.config, `${p.rt.groupId('embedder')}.${lane}`, [p.rt.topics.lane(lane)]);
    }
  });
  after(async () => {
    await embedder?.stop();
    await p?.stop();
  });

  test('many updates held in the live and bulk lanes, then a delete: the document never reappears', async () => {
    const text = 'Resurrection canary document about failover drills and standby promotion.';
    embedder = await createEmbedderService(p.rt);
    await embedder.start();
    const v1 = (await insertDocuments(p.source, [{ tenant, id: 'doc', body: text, acl: ['group:eng'] }])).get('doc')!;
    await waitForVersion(p, tenant, 'doc', v1);
    assert.deepEqual(await searchIds(p, queryEmbedder(p), tenant, 'group:eng', text), ['doc']);

    // Hold the lanes: stop the embedder, then queue content changes on both lanes.
    await embedder.stop();
    embedder = undefined;
    let version = v1;
    for (let i = 0; i < 15; i++)
      version = await updateDocument(p.source, tenant, 'doc', 'body = $3', [`${text} Revision ${i}.`]);
    const bulk = await p.source.query<{ id: string }>(
      `SELECT vecsync.enqueue_upsert(d, 'bulk', $3, $4) AS id FROM vecsync.documents d WHERE tenant_id = $1 AND document_id = $2`,
      [tenant, 'doc', p.config.embedder.model, p.config.embedder.version],
    );
    assert.equal(bulk.rowCount, 1);
    await p.source.query('DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', [tenant, 'doc']);
    const deletedAt = version + 1;

    // The priority lane is not held: the delete applies while the upserts wait.
    await waitFor(async () => (await ledgerRow(p, tenant, 'doc'))?.tombstone === true, { description: 'tombstone' });
    assert.deepEqual(await searchIds(p, queryEmbedder(p), tenant, 'group:eng', text), []);
    assert.deepEqual(await dump(p, tenant, 'doc'), []);

    // Release the lanes: 15 live upserts and one bulk upsert, all older than the tombstone. The
    // embedder reads each document's row (claim check) and drops an upsert whose document is gone
    // (a delete follows); whatever reaches the writer anyway is a no-op under the tombstone.
    const before = p.committed.writer.filter((c) => c.message.key === `${tenant}:doc`).length;
    const embedded: Outcome[] = [];
    embedder = await createEmbedderService(p.rt, {
      onCommitted: (messages, outcomes) =>
        messages.forEach((m, i) => {
          if (m.key === `${tenant}:doc`) embedded.push(outcomes[i]!);
        }),
    });
    await embedder.start();
    await waitFor(() => embedded.length >= 16, {
      timeoutMs: 60_000,
      description: 'the held upserts were embedded or dropped',
    });
    const forwarded = embedded.filter((o) => !(o.kind === 'done' && o.result === 'skipped')).length;
    await waitFor(
      () => p.committed.writer.filter((c) => c.message.key === `${tenant}:doc`).length >= before + forwarded,
      {
        timeoutMs: 60_000,
        description: 'the forwarded upserts reached the writer',
      },
    );
    const released = p.committed.writer.filter((c) => c.message.key === `${tenant}:doc`).slice(before);
    assert.ok(
      released.every((c) => c.outcome.kind === 'done' && c.outcome.result === 'skipped'),
      'every late upsert that reaches the writer is a no-op',
    );
    assert.deepEqual(await searchIds(p, queryEmbedder(p), tenant, 'group:eng', text), []);
    assert.deepEqual(await dump(p, tenant, 'doc'), []);
    const row = await ledgerRow(p, tenant, 'doc');
    assert.equal(row?.tombstone, true);
    assert.equal(row?.version, deletedAt);
  });
});

describe('a revoke racing a content update', () => {
  let p: TestPipeline;
  const tenant = `tenant_${uniqueId('race')}`;
  const text = 'Quarterly payroll export for the finance close, restricted to the close team.';

  before(async () => {
    p = await startPipeline('race');
  });
  after(async () => {
    await p?.stop();
  });

  test('after every round the revoked principal cannot find the document and the stored ACL is the newest', async () => {
    const v = (await insertDocuments(p.source, [{ tenant, id: 'doc', body: text, acl: ['alice', 'bob'] }])).get('doc')!;
    await waitForVersion(p, tenant, 'doc', v);
    assert.deepEqual(await searchIds(p, queryEmbedder(p), tenant, 'bob', text), ['doc']);
    for (let round = 0; round < 12; round++) {
      // Revoke bob and change the content in two concurrent transactions.
      const [, updated] = await Promise.all([
        p.source.query(
          `DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = 'doc' AND principal = 'bob'`,
          [tenant],
        ),
        updateDocument(p.source, tenant, 'doc', 'body = $3', [`${text} Round ${round}.`]),
      ]);
      const src = await p.source.query<{ version: string; acl_version: string }>(
        `SELECT version, acl_version FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'doc'`,
        [tenant],
      );
      const target = { version: Number(src.rows[0]!.version), aclVersion: Number(src.rows[0]!.acl_version) };
      assert.ok(target.version >= updated);
      // From the moment the revoke is applied, bob must never see the document again this round.
      // (Recorded, not thrown: waitFor would take a throw for "not yet".)
      const seenAfterRevoke: number[] = [];
      await waitFor(
        async () => {
          const row = await ledgerRow(p, tenant, 'doc');
          if (
            row &&
            row.aclVersion >= target.aclVersion &&
            (await searchIds(p, queryEmbedder(p), tenant, 'bob', text)).includes('doc')
          ) {
            seenAfterRevoke.push(row.version);
          }
          return row && row.version >= target.version && row.aclVersion >= target.aclVersion ? row : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 20, description: `round ${round} applied` },
      );
      assert.deepEqual(seenAfterRevoke, [], `round ${round}: bob saw the document after the revoke was applied`);
      assert.deepEqual(await searchIds(p, queryEmbedder(p), tenant, 'bob', text), []);
      assert.deepEqual(await searchIds(p, queryEmbedder(p), tenant, 'alice', text), ['doc']);
      const stored = await dump(p, tenant, 'doc');
      assert.ok(stored.length > 0);
      for (const c of stored) {
        assert.deepEqual(c.acl, ['alice'], `round ${round}: stored ACL`);
        assert.equal(c.acl_version, target.aclVersion);
        assert.equal(c.document_version, target.version);
      }
      // Grant bob again for the next round (and let it apply, so each round starts from a visible document).
      await p.source.query(
        `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) VALUES ($1, 'doc', 'bob')`,
        [tenant],
      );
      await waitFor(async () => (await searchIds(p, queryEmbedder(p), tenant, 'bob', text)).includes('doc'), {
        timeoutMs: 30_000,
        description: `round ${round}: grant applied`,
      });
    }
  });
});

describe('tenant isolation', () => {
  let p: TestPipeline;
  const a = `tenant_${uniqueId('iso_a')}`;
  const b = `tenant_${uniqueId('iso_b')}`;

  before(async () => {
    p = await startPipeline('isolation');
  });
  after(async () => {
    await p?.stop();
  });

  test('the same document id in two tenants stays separate, and search never crosses tenants', async () => {
    const textA = 'Tenant A runbook: restart the ingestion workers and drain the queue.';
    const textB = 'Tenant B runbook: restart the ingestion workers and drain the queue, then page on-call.';
    const va = (await insertDocuments(p.source, [{ tenant: a, id: 'same', body: textA, acl: ['group:ops'] }])).get(
      'same',
    )!;
    const vb = (await insertDocuments(p.source, [{ tenant: b, id: 'same', body: textB, acl: ['group:ops'] }])).get(
      'same',
    )!;
    await waitForVersion(p, a, 'same', va);
    await waitForVersion(p, b, 'same', vb);
    const inA = await dump(p, a);
    const inB = await dump(p, b);
    assert.ok(inA.length > 0 && inB.length > 0);
    assert.ok(inA.every((c) => c.tenant_id === a));
    assert.ok(inB.every((c) => c.tenant_id === b));
    assert.notDeepEqual(
      inA.map((c) => c.content_hash),
      inB.map((c) => c.content_hash),
    );
    // Deleting in A leaves B untouched.
    await p.source.query(`DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = 'same'`, [a]);
    await waitFor(async () => (await ledgerRow(p, a, 'same'))?.tombstone === true);
    assert.deepEqual(await dump(p, a), []);
    assert.deepEqual(await dump(p, b), inB);
    // B's text searched in A (same principal) finds nothing; in B it finds B's document.
    assert.deepEqual(await searchIds(p, queryEmbedder(p), a, 'group:ops', textB), []);
    assert.deepEqual(await searchIds(p, queryEmbedder(p), b, 'group:ops', textB), ['same']);
  });
});
