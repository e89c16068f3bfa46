import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classify,
  ConfigError,
  CredentialsError,
  describeError,
  PoisonMessageError,
  RateLimitedError,
  reasonOf,
  redactSecrets,
  registerSecret,
  RetriableError,
} from './errors.ts';

describe('classify', () => {
  it('gives every kind of error one decision', () => {
    assert.deepEqual(classify(new RetriableError('down')), { kind: 'retriable', reason: 'unavailable' });
    assert.deepEqual(classify(new RateLimitedError('slow', { retryAfterMs: 500 })), {
      kind: 'rate_limited',
      reason: 'rate_limited',
      waitMs: 500,
    });
    assert.deepEqual(classify(new CredentialsError('openai', 'unauthorized', '401')), {
      kind: 'credentials',
      reason: 'unauthorized',
      dependency: 'openai',
    });
    assert.deepEqual(classify(new PoisonMessageError('body_too_large', 'big')), {
      kind: 'poison',
      reason: 'body_too_large',
    });
    assert.equal(classify(new TypeError('x')).kind, 'bug');
    assert.equal(classify(new ConfigError('x')).kind, 'unknown');
    assert.equal(classify('a string').kind, 'unknown');
  });
  it('is the dead-letter reason', () => {
    assert.equal(reasonOf(new PoisonMessageError('record_too_large', 'x')), 'record_too_large');
    assert.equal(reasonOf(new RangeError('x')), 'programming_error');
    assert.equal(reasonOf(new Error('x')), 'unexpected_error');
  });
});

describe('redactSecrets', () => {
  it('masks URL passwords (valid or not), password= pairs, bearer tokens and registered values', () => {
    registerSecret('sk-registered-123');
    const text =
      'postgres://u:pa@ss@h:5432/db and postgres://u:x@h:bad/db password=hunter2 Bearer abc.def key sk-registered-123';
    const out = redactSecrets(text);
    for (const secret of ['pa@ss', ':x@', 'hunter2', 'abc.def', 'sk-registered-123'])
      assert.ok(!out.includes(secret), out);
    assert.match(out, /postgres:\/\/u:\*\*\*@h:5432\/db/);
    assert.ok(!describeError(new Error(`failed: postgres://a:b3cr3t@h/db`)).includes('b3cr3t'));
  });
});
