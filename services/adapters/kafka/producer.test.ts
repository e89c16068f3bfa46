import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify } from '../../domain/errors.ts';
import { groupBySize, producerError } from './producer.ts';
import { DLQ_HEADER, DLQ_MAX_MESSAGE_BYTES, sendDeadLetters } from './dlq.ts';
import type { OutMessage } from './message.ts';

const msg = (bytes: number): OutMessage => ({ key: 'k', value: Buffer.alloc(bytes) });

describe('producer', () => {
  it('groups messages so that no request exceeds the limit (a larger message goes alone)', () => {
    const groups = groupBySize([msg(400), msg(400), msg(400), msg(5000), msg(10)], 1000);
    assert.deepEqual(
      groups.map((g) => g.map((m) => (m.value as Buffer).length)),
      [[400, 400], [400], [5000], [10]],
    );
  });
  it('a record over a limit is poison (never retried), an auth failure pauses, anything else is retriable', () => {
    const tooLarge = Object.assign(new Error('The request included a message larger than the max'), {
      type: 'MESSAGE_TOO_LARGE',
    });
    const wrapped = Object.assign(new Error('retries exceeded'), { originalError: tooLarge });
    assert.deepEqual(classify(producerError('t', wrapped)), { kind: 'poison', reason: 'record_too_large' });
    const auth = Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' });
    assert.equal(classify(producerError('t', auth)).kind, 'credentials');
    assert.equal(classify(producerError('t', new Error('Connection error'))).kind, 'retriable');
  });
});

describe('dead letters', () => {
  it('a value too large for the DLQ topic is stored as a reference with its size', async () => {
    const sent: OutMessage[] = [];
    const producer = { send: async (_t: string, m: OutMessage[]) => void sent.push(...m), close: async () => {} };
    const message = {
      topic: 'lane',
      partition: 2,
      offset: '7',
      key: 'k',
      value: Buffer.alloc(DLQ_MAX_MESSAGE_BYTES + 1),
      headers: {},
      timestamp: 0,
    };
    const small = { ...message, offset: '8', value: Buffer.from('{}') };
    const letter = (m: typeof message) => ({
      message: m,
      error: new Error('x'),
      attempts: 1,
      firstFailure: new Date(),
      lastFailure: new Date(),
    });
    await sendDeadLetters(producer, 'dlq', 'embedder', 'g', [letter(message), letter(small)]);
    assert.equal(sent[0]!.value, null);
    assert.equal(sent[0]!.headers![DLQ_HEADER.valueOmitted], String(DLQ_MAX_MESSAGE_BYTES + 1));
    assert.equal(sent[0]!.headers![DLQ_HEADER.offset], '7');
    assert.deepEqual(sent[1]!.value, Buffer.from('{}'));
  });
});
