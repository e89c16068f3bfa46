import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareVersions } from './health.ts';

describe('pgvector health', () => {
  it('compares extension versions numerically', () => {
    assert.equal(compareVersions('0.8.0', '0.8.0'), 0);
    assert.equal(compareVersions('0.10.0', '0.8.0'), 1);
    assert.equal(compareVersions('0.7.4', '0.8.0'), -1);
    assert.equal(compareVersions('0.8', '0.8.0'), 0);
    assert.equal(compareVersions('1.0.0', '0.8.1'), 1);
  });
});
