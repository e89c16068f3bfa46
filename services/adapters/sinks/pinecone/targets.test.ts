import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../domain/errors.ts';
import { hostMode, modelKeySlug, parseIndexTargets, resolveTarget } from './targets.ts';

const active = 'hashing-384.v1';

describe('pinecone index targets', () => {
  it('a bare index and host belong to the active model', () => {
    const t = parseIndexTargets({ activeModelKey: active, index: 'vecsync', host: 'http://127.0.0.1:9/' });
    assert.ok(hostMode(t));
    assert.deepEqual(resolveTarget(t, active), { modelKey: active, name: 'vecsync', host: 'http://127.0.0.1:9' });
  });

  it('other models by <model key>=<value> entries', () => {
    const t = parseIndexTargets({
      activeModelKey: active,
      index: 'vecsync, hashing-384.v2=vecsync-v2',
      host: 'https://a.svc.pinecone.io,hashing-384.v2=b.svc.pinecone.io',
    });
    assert.deepEqual(resolveTarget(t, 'hashing-384.v2'), {
      modelKey: 'hashing-384.v2',
      name: 'vecsync-v2',
      host: 'b.svc.pinecone.io',
    });
    assert.equal(resolveTarget(t, active).host, 'https://a.svc.pinecone.io');
  });

  it('host mode: a model without a host is a configuration error naming the variable', () => {
    const t = parseIndexTargets({ activeModelKey: active, index: 'vecsync', host: 'http://h:1' });
    assert.throws(
      () => resolveTarget(t, 'other.v2'),
      (e: unknown) => e instanceof ConfigError && /VECSYNC_PINECONE_HOST/.test(e.message),
    );
  });

  it('name mode: other models get <index>-<model key slug>, resolved by the control plane', () => {
    const t = parseIndexTargets({ activeModelKey: active, index: 'vecsync', host: '' });
    assert.ok(!hostMode(t));
    assert.deepEqual(resolveTarget(t, active), { modelKey: active, name: 'vecsync' });
    assert.deepEqual(resolveTarget(t, 'hashing-384.v2'), {
      modelKey: 'hashing-384.v2',
      name: 'vecsync-hashing-384-v2',
    });
    assert.equal(modelKeySlug('text-embedding-3-small.v12'), 'text-embedding-3-small-v12');
    assert.throws(() => resolveTarget(t, `${'x'.repeat(40)}.v1`), /VECSYNC_PINECONE_INDEX/);
  });

  it('names the bad variable', () => {
    assert.throws(
      () => parseIndexTargets({ activeModelKey: active, index: 'Bad_Name', host: '' }),
      (e: unknown) => e instanceof ConfigError && /VECSYNC_PINECONE_INDEX/.test(e.message),
    );
    assert.throws(
      () => parseIndexTargets({ activeModelKey: active, index: 'a,b', host: '' }),
      /more than one entry without a model key/,
    );
    assert.throws(
      () => parseIndexTargets({ activeModelKey: active, index: 'vecsync', host: 'http://h/?x=1' }),
      /VECSYNC_PINECONE_HOST/,
    );
  });
});
