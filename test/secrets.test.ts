/**
 * Secrets and settings: a known database password and API key appear nowhere in `vecsync config`
 * output, in the error of an invalid or unreachable URL, or in log lines; `vecsync migrate` changes
 * the metadata allowlist only when VECSYNC_METADATA_ALLOWLIST is set (or on first install), so a
 * narrowed allowlist survives a migrate with the variable unset.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../services/config/index.ts';
import { describeError } from '../services/domain/errors.ts';
import { loggerOptions } from '../services/adapters/telemetry/log.ts';
import { uniqueId } from './support/ids.ts';
import { ensureStack } from './support/stack.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin', 'vecsync.mjs');
const PASSWORD = 'Kn0wn-P4ss_word!x';
const API_KEY = 'sk-known-api-key-7f3e1';

/** Runs the CLI and returns everything it printed, whatever its exit code. */
async function vecsync(args: string[], env: Record<string, string>): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return { out: stdout + stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { out: `${e.stdout ?? ''}${e.stderr ?? ''}`, code: typeof e.code === 'number' ? e.code : 1 };
  }
}

function assertClean(text: string, where: string): void {
  assert.ok(!text.includes(PASSWORD), `${where} shows the password: ${text.slice(0, 500)}`);
  assert.ok(!text.includes(encodeURIComponent(PASSWORD)), `${where} shows the encoded password`);
  assert.ok(!text.includes(API_KEY), `${where} shows the API key`);
}

const base = loadConfig();
const withPassword = (database: string, port?: number): string => {
  const url = new URL(base.sourceUrl);
  url.password = encodeURIComponent(PASSWORD);
  url.pathname = `/${database}`;
  if (port) url.port = String(port);
  return url.toString();
};

describe('secrets are redacted', () => {
  test('vecsync config prints neither the password nor the API key', async () => {
    const { out, code } = await vecsync(['config'], {
      VECSYNC_SOURCE_URL: withPassword('vecsync'),
      VECSYNC_PGVECTOR_URL: withPassword('vecsync_vectors'),
      VECSYNC_OPENAI_API_KEY: API_KEY,
    });
    assert.equal(code, 0, out);
    assert.match(out, /VECSYNC_SOURCE_URL/);
    assert.match(out, /:\*\*\*@/, 'the URL is shown with its password masked');
    assertClean(out, 'config');
  });

  test('an invalid URL is not echoed back with its password', async () => {
    const { out, code } = await vecsync(['config'], {
      VECSYNC_SOURCE_URL: `postgres://postgres:${PASSWORD}@127.0.0.1:notaport/vecsync`,
    });
    assert.notEqual(code, 0);
    assert.match(out, /invalid VECSYNC_SOURCE_URL/);
    assertClean(out, 'the error');
  });

  test('an unreachable database is reported without the password', async () => {
    const { out, code } = await vecsync(['migrate', '--only', 'source'], {
      VECSYNC_SOURCE_URL: withPassword('vecsync', 1),
      VECSYNC_OPENAI_API_KEY: API_KEY,
    });
    assert.notEqual(code, 0);
    assert.ok(out.length > 0);
    assertClean(out, 'the error');
  });

  test('log lines carry no password or key, wherever they hide', () => {
    loadConfig({ ...process.env, VECSYNC_SOURCE_URL: withPassword('vecsync'), VECSYNC_OPENAI_API_KEY: API_KEY });
    const lines: string[] = [];
    const log = pino(
      loggerOptions('trace'),
      new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
    );
    const url = `postgres://postgres:${PASSWORD}@db.example:5432/vecsync`;
    log.info({ url, config: { sourceUrl: url } }, 'connecting');
    log.error({ err: new Error(`connect to ${url} failed`) }, `cannot reach ${url}`);
    log.warn({ headers: { authorization: `Bearer ${API_KEY}` }, detail: `server said: bad key ${API_KEY}` }, 'x');
    log.info(`password=${PASSWORD} in a libpq string`);
    assert.equal(lines.length, 4);
    for (const line of lines) assertClean(line, 'a log line');
    assertClean(describeError(new Error(`upstream rejected ${API_KEY} for ${url}`)), 'describeError');
  });
});

describe('vecsync migrate and the metadata allowlist', () => {
  const source = uniqueId('mig_src');
  const sink = uniqueId('mig_sink');
  const url = (db: string) => {
    const u = new URL(base.sourceUrl);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const env = { VECSYNC_SOURCE_URL: url(source), VECSYNC_PGVECTOR_URL: url(sink) };
  const allowlist = async (): Promise<string[]> => {
    const client = new pg.Client({ connectionString: url(source) });
    await client.connect();
    try {
      const { rows } = await client.query<{ key: string }>('SELECT key FROM vecsync.metadata_allowlist ORDER BY key');
      return rows.map((r) => r.key);
    } finally {
      await client.end();
    }
  };

  after(async () => {
    const admin = new pg.Client({ connectionString: base.sourceUrl });
    await admin.connect();
    for (const db of [source, sink]) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  });

  test('changes the allowlist only when told to', { timeout: 300_000 }, async () => {
    await ensureStack();
    const first = await vecsync(['migrate'], { ...env, VECSYNC_METADATA_ALLOWLIST: '' });
    assert.equal(first.code, 0, first.out);
    const seeded = await allowlist();
    assert.deepEqual(seeded, [...base.metadataAllowlist].sort(), 'first install seeds the default');

    const narrowed = await vecsync(['migrate'], { ...env, VECSYNC_METADATA_ALLOWLIST: 'category' });
    assert.equal(narrowed.code, 0, narrowed.out);
    assert.deepEqual(await allowlist(), ['category']);

    const unset = await vecsync(['migrate'], { ...env, VECSYNC_METADATA_ALLOWLIST: '' });
    assert.equal(unset.code, 0, unset.out);
    assert.match(unset.out, /allowlist left as it is/);
    assert.deepEqual(await allowlist(), ['category'], 'an unset variable does not widen a narrowed allowlist');
  });
});
