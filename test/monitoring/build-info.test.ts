/** `vecsync_build_info` carries the package version and the service once /metrics is served. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { packageVersion, startMetricsServer } from '../../services/adapters/telemetry/metrics.ts';
import { REPO } from './support.ts';

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
