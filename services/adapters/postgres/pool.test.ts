import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prepared } from './pool.ts';

test('a named statement per SQL text: equal text one name, other text another, within the identifier limit', () => {
  const lock = prepared('SELECT 1 WHERE $1::text IS NOT NULL');
  assert.equal(prepared('SELECT 1 WHERE $1::text IS NOT NULL'), lock);
  assert.equal(lock.text, 'SELECT 1 WHERE $1::text IS NOT NULL');
  const other = prepared('SELECT 2 WHERE $1::text IS NOT NULL');
  assert.notEqual(other.name, lock.name);
  // PostgreSQL truncates names past 63 bytes, which could make two statements one.
  assert.ok(lock.name.length <= 63, lock.name);
});
