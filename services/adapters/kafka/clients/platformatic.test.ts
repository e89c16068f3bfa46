import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compatibilityPartitioner, defaultPartitioner, ProtocolError, type Message } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { PoisonMessageError, RetriableError } from '../../../domain/errors.ts';
import { producerError } from '../producer.ts';
import { protocolErrorId, toInMessage, toProduced, withErrorType } from './platformatic.ts';

const { Partitioners } = kafkajs;

describe('@platformatic/kafka on this Node', () => {
  it('has Promise.withResolvers once the adapter is loaded (Node 20 lacks it)', () => {
    assert.equal(typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers, 'function');
  });
});

describe('partitioning', () => {
  const partitions = 6;
  const kafkajsPartition = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }));
  /** The partitioners read only the key (both signatures are wider). */
  const platformatic = (partitioner: typeof defaultPartitioner, key: string) =>
    partitioner({ topic: 't' }, Buffer.from(key)) % partitions;
  const keys = Array.from({ length: 500 }, (_, i) => `tenant-${i % 7}/doc-${i}`);

  it("the compatibility partitioner puts every key where kafkajs' DefaultPartitioner (Java murmur2) does", () => {
    for (const key of keys) {
      const expected = kafkajsPartition({ topic: 't', partitionMetadata, message: { key, value: null } });
      const actual = platformatic(compatibilityPartitioner, key);
      assert.equal(actual, expected, key);
    }
  });

  it('its default partitioner does not, which is why the adapter names the compatibility one', () => {
    const differ = keys.filter(
      (key) =>
        platformatic(defaultPartitioner, key) !==
        kafkajsPartition({ topic: 't', partitionMetadata, message: { key, value: null } }),
    );
    assert.ok(differ.length > 0);
  });
});

describe('message conversion', () => {
  it('turns a consumed message into the client-neutral shape', () => {
    const m = {
      topic: 't',
      partition: 3,
      offset: 9007199254740993n,
      key: Buffer.from('doc-1'),
      value: Buffer.from('{}'),
      headers: new Map([[Buffer.from('lane'), Buffer.from('live')]]),
      timestamp: 1700000000123n,
    } as unknown as Message;
    assert.deepEqual(toInMessage(m), {
      topic: 't',
      partition: 3,
      offset: '9007199254740993',
      key: 'doc-1',
      value: Buffer.from('{}'),
      headers: { lane: 'live' },
      timestamp: 1700000000123,
    });
  });

  it('keeps a null key and a tombstone null, and an empty key empty (as kafkajs)', () => {
    const base = { topic: 't', partition: 0, offset: 0n, headers: new Map(), timestamp: 0n };
    const tombstone = toInMessage({ ...base, key: Buffer.from('k'), value: null } as unknown as Message);
    assert.equal(tombstone.value, null);
    assert.equal(toInMessage({ ...base, key: undefined, value: Buffer.from('v') } as unknown as Message).key, null);
    assert.equal(toInMessage({ ...base, key: Buffer.alloc(0), value: Buffer.from('v') } as unknown as Message).key, '');
  });

  it('encodes an outgoing message as buffers, a null value as a tombstone', () => {
    const p = toProduced('t', { key: 'k', value: 'v', headers: { a: 'b' } });
    assert.deepEqual(p.key, Buffer.from('k'));
    assert.deepEqual(p.value, Buffer.from('v'));
    assert.deepEqual(
      [...p.headers].map(([k, v]) => [k.toString(), v.toString()]),
      [['a', 'b']],
    );
    assert.equal(toProduced('t', { key: 'k', value: null }).value, undefined);
  });
});

describe('errors', () => {
  it('finds the broker error name, also inside an aggregate', () => {
    const tooLarge = new ProtocolError('MESSAGE_TOO_LARGE');
    assert.equal(protocolErrorId(tooLarge), 'MESSAGE_TOO_LARGE');
    assert.equal(protocolErrorId(new AggregateError([tooLarge], 'send failed')), 'MESSAGE_TOO_LARGE');
    assert.equal(protocolErrorId(new Error('socket hang up')), undefined);
  });

  it('maps a too-large record to poison and a network error to retriable, as for kafkajs', () => {
    assert.ok(producerError('t', withErrorType(new ProtocolError('MESSAGE_TOO_LARGE'))) instanceof PoisonMessageError);
    assert.ok(producerError('t', withErrorType(new Error('socket hang up'))) instanceof RetriableError);
  });
});
