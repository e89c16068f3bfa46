import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { documentContentHash, sha256Hex } from './content-hash.ts';

describe('content hash', () => {
  it('is sha256 hex of the UTF-8 bytes (same value PostgreSQL computes)', () => {
    // select encode(sha256(convert_to('héllo', 'UTF8')), 'hex')
    assert.equal(sha256Hex('héllo'), '3c48591d8d098a4538f5e013dfcf406e948eac4d3277b10bf614e295d6068179');
  });

  it('covers title and body like vecsync.content_hash(title, body) in SQL', () => {
    // select vecsync.content_hash('T', 'héllo') = encode(sha256(convert_to('T' || E'\n' || 'héllo', 'UTF8')), 'hex')
    assert.equal(documentContentHash('T', 'héllo'), '01b114938dc9850d8466d550b14d21519b313c82a2e30b1edab5032da6d3eea9');
    assert.equal(documentContentHash(null, null), sha256Hex('\n'));
    assert.equal(documentContentHash(null, 'b'), documentContentHash('', 'b'));
    assert.notEqual(documentContentHash('a', 'b'), documentContentHash('a', 'b '));
  });
});
