/**
 * `vecsync replay`: refuses while the group has active members, resets offsets once it is stopped,
 * and the replayed records leave the sink unchanged.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createWriterService } from '../services/pipeline/writer/index.ts';
import type { Service } from '../services/pipeline/runtime/service.ts';
import { uniqueId } from './support/ids.ts';
import { withAdmin } from './support/kafka.ts';
import { dump, insertDocuments, startPipeline, waitForVersion, type TestPipeline } from './support/pipeline.ts';
import { waitFor } from './support/wait.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');

async function vecsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { env: process.env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('vecsync replay', () => {
  let p: TestPipeline;
  let writer: Service | undefined;
  const tenant = `tenant_${uniqueId('replaycli')}`;

  before(async () => {
    p = await startPipeline('replaycli');
  });
  after(async () => {
    await writer?.stop();
    await p?.stop();
  });

  test('refuses while the group is active, then replays from a point in time without changing the sink', async () => {
    const startedAt = new Date(Date.now() - 1000).toISOString();
    const docs = Array.from({ length: 6 }, (_, i) => ({
      tenant,
      id: `d${i}`,
      body: `Replay me ${i}. `.repeat(60),
      acl: ['g'],
    }));
    const versions = await insertDocuments(p.source, docs);
    for (const d of docs) await waitForVersion(p, tenant, d.id, versions.get(d.id)!);
    const before = await dump(p, tenant);
    const group = p.rt.groupId('writer');

    const refused = await vecsync(['replay', '--group', group, '--to-datetime', startedAt]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`^vecsync: group ${group.replace(/\./g, '\\.')} has \\d+ active member`));
    assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');

    await p.stop();
    const dry = await vecsync(['replay', '--group', group, '--to-earliest', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { dryRun: boolean; topics: { topic: string }[] };
    assert.equal(plan.dryRun, true);
    assert.deepEqual(
      plan.topics.map((t) => t.topic),
      [p.rt.topics.chunks(p.rt.activeIndex.modelKey)],
    );

    const done = await vecsync(['replay', '--group', group, '--to-datetime', startedAt]);
    assert.equal(done.code, 0, done.stderr);
    const committed = await withAdmin(p.config.kafkaBrokers, (admin) => admin.fetchOffsets({ groupId: group }));
    const byTime = await withAdmin(p.config.kafkaBrokers, (admin) =>
      admin.fetchTopicOffsetsByTimestamp(committed[0]!.topic, new Date(startedAt).getTime()),
    );
    assert.deepEqual(
      committed[0]!.partitions.map((x) => [x.partition, x.offset]).sort(),
      byTime.map((x) => [x.partition, x.offset]).sort(),
      'offsets moved to the requested time',
    );

    // The same group consumes again: every replayed record of this tenant is a no-op.
    const { createRuntime } = await import('../services/pipeline/runtime/index.ts');
    const rt = await createRuntime(p.config, 'replaycli-again');
    const seen: string[] = [];
    writer = await createWriterService(rt, {
      onCommitted: (messages, outcomes) =>
        messages.forEach((m, i) => {
          const o = outcomes[i]!;
          if (m.key?.startsWith(`${tenant}:`)) seen.push(o.kind === 'done' ? (o.result ?? 'applied') : 'dead');
        }),
    });
    await writer.start();
    await waitFor(() => seen.length >= docs.length, { timeoutMs: 60_000, description: 'replayed records consumed' });
    await writer.stop();
    writer = undefined;
    await rt.close();
    assert.ok(
      seen.every((s) => s === 'skipped'),
      seen.join(','),
    );
    const { createSink } = await import('../services/adapters/sinks/index.ts');
    const sink = await createSink(p.config);
    try {
      assert.deepEqual(await sink.inspect(p.rt.activeIndex, tenant, undefined, { includeEmbeddings: true }), before);
    } finally {
      await sink.close();
    }
  });
});
