/** `vecsync_build_info` carries the package version and the service once /metrics is served. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { packageVersion, startMetricsServer } from '../../services/adapters/telemetry/metrics.ts';
import { binaryOrSkip, REPO } from './support.ts';

test('startMetricsServer exports vecsync_build_info{version,service} = 1 with the package.json version', async () => {
  const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(packageVersion(), version);
  const server = await startMetricsServer('127.0.0.1', 0, 'writer');
  try {
    const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    assert.match(
      body,
      new RegExp(`^vecsync_build_info\\{version="${version.replace(/\./g, '\\.')}",service="writer"\\} 1$`, 'm'),
    );
    // Default process metrics carry the single prefix (not vecsync_process_process_…).
    assert.match(body, /^vecsync_process_cpu_seconds_total /m);
    assert.doesNotMatch(body, /vecsync_process_process_/);
  } finally {
    await server.close();
  }
});

test('promtool check metrics finds nothing to complain about in /metrics', async (t) => {
  const promtool = binaryOrSkip(t, 'promtool');
  if (!promtool) return;
  const server = await startMetricsServer('127.0.0.1', 0, 'writer');
  try {
    const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    const result = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    // promtool prints one line per lint problem and exits non-zero when there is any.
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
    assert.equal(result.status, 0);
  } finally {
    await server.close();
  }
});
