import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PoisonMessageError, RetriableError } from './errors.ts';
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
