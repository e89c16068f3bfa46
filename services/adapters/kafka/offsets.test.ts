import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../domain/errors.ts';
import { parseReplayTarget } from './offsets.ts';

test('a replay target is exactly one of --to-earliest and --to-datetime', () => {
  assert.deepEqual(parseReplayTarget({ toEarliest: true }), { kind: 'earliest' });
  assert.deepEqual(parseReplayTarget({ toDatetime: '2026-11-21T10:00:00Z' }), {
    kind: 'datetime',
    at: new Date('2026-11-21T10:00:00Z'),
  });
  assert.throws(() => parseReplayTarget({}), ConfigError);
  assert.throws(() => parseReplayTarget({ toEarliest: true, toDatetime: '2026-11-21T10:00:00Z' }), /not both/);
  assert.throws(() => parseReplayTarget({ toDatetime: 'yesterday' }), /invalid --to-datetime "yesterday"/);
});
