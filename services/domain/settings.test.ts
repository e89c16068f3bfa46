import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { describeSettings, listSettings, setting, settle } from './settings.ts';

const tree = {
  port: setting({ env: 'T_PORT', schema: z.coerce.number().int(), default: '5432', doc: 'a port' }),
  db: {
    url: setting({
      env: 'T_URL',
      schema: z.string().url(),
      default: (s) => `postgres://app:pw@127.0.0.1:${s.T_PORT}/db`,
      doc: 'derived from the port',
    }),
    key: setting({ env: 'T_KEY', schema: z.string().min(3), default: 'abcd', secret: true, doc: 'a secret' }),
  },
};

describe('declared settings', () => {
  it('settles a nested tree in declaration order; later defaults see earlier values', () => {
    const config = settle(tree, { T_PORT: '6000' });
    assert.deepEqual(config, { port: 6000, db: { url: 'postgres://app:pw@127.0.0.1:6000/db', key: 'abcd' } });
    assert.deepEqual(
      listSettings(tree).map((s) => s.path),
      ['port', 'db.url', 'db.key'],
    );
  });

  it('names the bad variable, and never echoes a secret or a URL password', () => {
    assert.throws(
      () => settle(tree, { T_PORT: 'x' }),
      (e: unknown) => e instanceof ConfigError && /T_PORT="x"/.test(e.message),
    );
    assert.throws(
      () => settle(tree, { T_KEY: 'no' }),
      (e: unknown) => e instanceof ConfigError && /T_KEY=<redacted>/.test(e.message) && !e.message.includes('no"'),
    );
    assert.throws(
      () => settle(tree, { T_URL: 'not a url://u:hunter2@x' }),
      (e: unknown) => e instanceof ConfigError && /T_URL/.test(e.message) && !e.message.includes('hunter2'),
    );
  });

  it('describes the effective values with secrets and URL passwords redacted', () => {
    const shown = describeSettings(tree, settle(tree, {}));
    assert.deepEqual(shown, {
      T_PORT: 5432,
      T_URL: 'postgres://app:***@127.0.0.1:5432/db',
      T_KEY: '<redacted>',
    });
  });
});
