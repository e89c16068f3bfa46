/**
 * `npm start`'s demo with its re-embed step, as a user runs it (the CLI, on the shared stack, the
 * default sink): the corpus syncs, the permission checks hold, and the blue/green re-embed goes
 * through compare (with recall for both models), cutover and rollback, leaving the configured
 * model serving and no re-embed open. Hashing to hashing at other dimensions keeps it fast; the
 * minilm variant is the same code (`vecsync demo --reembed --reembed-to minilm`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { testSinkName } from './support/pipeline.ts';
import { ensureStack } from './support/stack.ts';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'vecsync.mjs');

describe('vecsync demo --reembed', { timeout: 10 * 60_000 }, () => {
  test('syncs, searches with permissions, re-embeds with compare, cutover and rollback', async () => {
    await ensureStack();
    // A sink and groups of this test: the default ones may be behind on a stack other work used.
    const sinkName = testSinkName();
    const env = {
      ...process.env,
      VECSYNC_EMBEDDER: 'hashing',
      VECSYNC_METRICS_PORT: '0',
      VECSYNC_SINK_NAME: sinkName,
      VECSYNC_GROUP_PREFIX: `test.demo.${sinkName}`,
    };
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        BIN,
        'demo',
        '--skip-stack',
        '--documents',
        '200',
        '--reembed',
        '--reembed-to',
        'hashing',
        '--reembed-dimensions',
        '256',
      ],
      {
        env,
        maxBuffer: 1 << 26,
        timeout: 9 * 60_000,
      },
    );
    assert.match(stdout, /synced \d+ documents in/);
    assert.match(stdout, /✓ article-db-failover is not shown to user:nobody/);
    assert.doesNotMatch(stdout, /may not read/);
    const compare =
      /documents old (\d+) \/ new (\d+), missing (\d+), extra (\d+), version mismatch (\d+), ACL mismatch (\d+)/.exec(
        stdout,
      );
    assert.ok(compare, stdout.slice(-2000));
    assert.equal(compare[1], compare[2], 'both indexes hold the same documents');
    assert.deepEqual(compare.slice(3), ['0', '0', '0', '0']);
    assert.match(stdout, /recall@10: hashing-384\.v1 \d+\.\d%, hashing-256\.v\d+ \d+\.\d%/);
    assert.match(stdout, /hashing-256\.v\d+ now serves sink/);
    assert.match(stdout, /hashing-384\.v1 serves again; hashing-256\.v\d+ retired and its index dropped/);

    // Left as it was: the configured model serves and no re-embed is open.
    const config = loadConfig(env);
    const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 1 });
    try {
      const serving = await pool.query<{ model_name: string; model_version: number }>(
        'SELECT model_name, model_version FROM vecsync.model_serving WHERE sink_name = $1',
        [config.sink.name],
      );
      assert.deepEqual(serving.rows, [{ model_name: 'hashing-384', model_version: 1 }]);
      const open = await pool.query(
        `SELECT id FROM vecsync.reembeds WHERE sink_name = $1 AND state IN ('backfilling', 'ready', 'serving')`,
        [config.sink.name],
      );
      assert.equal(open.rowCount, 0);
    } finally {
      await pool.end();
    }
  });
});
