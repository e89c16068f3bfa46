import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, CredentialsError, isRetriable, PoisonMessageError, RetriableError } from '../../../domain/errors.ts';
import { classifyPgError, toSinkError } from './errors.ts';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('pgvector error meaning', () => {
  it('unavailable: connection, shutdown, timeouts, lock conflicts', () => {
    for (const code of [
      '08006',
      '08001',
      '57P01',
      '57P03',
      '53300',
      '40001',
      '40P01',
      '57014',
      'ECONNREFUSED',
      'ECONNRESET',
    ]) {
      assert.equal(classifyPgError(pgError(code)), 'unavailable', code);
    }
    assert.equal(classifyPgError(new Error('Connection terminated unexpectedly')), 'unavailable');
    assert.equal(classifyPgError(new Error('timeout exceeded when trying to connect')), 'unavailable');
    assert.equal(
      classifyPgError(new AggregateError([pgError('ECONNREFUSED'), pgError('ECONNREFUSED')])),
      'unavailable',
    );
  });

  it('credentials: the role refused (class 28) or lacking a privilege (42501)', () => {
    for (const code of ['28000', '28P01', '42501']) assert.equal(classifyPgError(pgError(code)), 'credentials', code);
  });

  it('data: what one item can cause', () => {
    for (const code of ['22000', '22021', '22P05', '23502', '23505', '54000']) {
      assert.equal(classifyPgError(pgError(code)), 'data', code);
    }
  });

  it('bug: everything else', () => {
    for (const error of [pgError('42P01'), pgError('42601'), pgError('XX000'), new TypeError('x'), 'a string', null]) {
      assert.equal(classifyPgError(error), 'bug', String(error));
    }
  });

  it('maps to the error hierarchy, keeping the cause', () => {
    const down = pgError('57P01', 'terminating connection due to administrator command');
    const retriable = toSinkError(down, 'document write');
    assert.ok(retriable instanceof RetriableError);
    assert.equal(retriable.cause, down);

    const bad = pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00');
    const poison = toSinkError(bad, 'document write');
    assert.ok(poison instanceof PoisonMessageError);
    assert.equal(poison.reason, 'sink_rejected');
    assert.match(poison.message, /\(22021\)/);

    const bug = pgError('42601');
    assert.equal(toSinkError(bug, 'x'), bug);
  });

  it('a refused role pauses the service (CredentialsError pgvector), it never dead-letters', () => {
    for (const [code, message, reason] of [
      ['28000', 'role "vecsync_writer" is not permitted to log in', 'unauthorized'],
      ['28P01', 'password authentication failed for user "vecsync_writer"', 'unauthorized'],
      ['42501', 'permission denied for table document_acl', 'forbidden'],
    ] as const) {
      const cause = pgError(code, message);
      const refused = toSinkError(cause, 'document write');
      assert.ok(refused instanceof CredentialsError, code);
      assert.equal(refused.cause, cause);
      assert.deepEqual(classify(refused), { kind: 'credentials', reason, dependency: 'pgvector' });
      assert.ok(isRetriable(refused), code);
      assert.match(refused.message, new RegExp(`\\(document write, ${code}\\).*VECSYNC_PGVECTOR_URL`));
    }
  });
});
