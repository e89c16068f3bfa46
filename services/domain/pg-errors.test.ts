import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classify, CredentialsError, PoisonMessageError, RetriableError } from './errors.ts';
import { classifyPgError, pgErrorKind } from './pg-errors.ts';

function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

test('a database refusing connections for now is unavailable, other 55000 errors are bugs', () => {
  assert.equal(
    pgErrorKind(pgError('55000', 'database "vecsync_vectors" is not currently accepting connections')),
    'unavailable',
  );
  assert.equal(pgErrorKind(pgError('55000', 'replication slot "x" is active')), 'bug');
});

test('connection loss, shutdown and deadlocks are retriable; data errors are poison; the rest is a bug', () => {
  assert.ok(
    classifyPgError(pgError('57P01', 'terminating connection due to administrator command'), 'ledger') instanceof
      RetriableError,
  );
  assert.ok(classifyPgError(pgError('40P01', 'deadlock detected'), 'ledger') instanceof RetriableError);
  assert.ok(classifyPgError(new Error('Connection terminated unexpectedly'), 'ledger') instanceof RetriableError);
  assert.ok(classifyPgError(pgError('22P02', 'invalid input syntax'), 'ledger') instanceof PoisonMessageError);
  const bug = pgError('42703', 'column "x" does not exist');
  assert.equal(classifyPgError(bug, 'ledger'), bug);
});

test('a refused role is credentials: class 28 unauthorized, 42501 forbidden, never poison or a bug', () => {
  const cases = [
    ['28000', 'role "vecsync" is not permitted to log in', 'unauthorized'],
    ['28P01', 'password authentication failed for user "vecsync"', 'unauthorized'],
    ['42501', 'permission denied for table sync_state', 'forbidden'],
  ] as const;
  for (const [code, message, reason] of cases) {
    const cause = pgError(code, message);
    assert.equal(pgErrorKind(cause), 'credentials', code);
    const refused = classifyPgError(cause, 'ledger database');
    assert.ok(refused instanceof CredentialsError, code);
    assert.equal(refused.cause, cause);
    assert.deepEqual(classify(refused), { kind: 'credentials', reason, dependency: 'postgres' });
    assert.match(refused.message, /^ledger database refused our role .*VECSYNC_SOURCE_URL/);
  }
  // Other class 42 errors stay bugs.
  assert.equal(pgErrorKind(pgError('42P01', 'relation "x" does not exist')), 'bug');
});
