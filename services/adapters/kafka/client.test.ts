import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { clientLogLevel } from './client.ts';
import { RunnerStopping } from './runner.ts';

const { logLevel } = kafkajs;

describe('kafkajs log levels', () => {
  it('turns answers kafkajs retries by itself into debug lines', () => {
    const notLeader = {
      message: 'Response ListOffsets(key: 2, version: 2)',
      error: 'This server is not the leader for that topic-partition',
    };
    assert.equal(clientLogLevel(logLevel.ERROR, notLeader), 'debug');
    assert.equal(clientLogLevel(logLevel.ERROR, { error: 'The group is rebalancing, so a rejoin is needed' }), 'debug');
    assert.equal(clientLogLevel(logLevel.ERROR, { error: 'Topic creation errors' }), 'debug');
  });

  it('a slice abandoned by a stop is not an error', () => {
    const stack = new RunnerStopping('writer').stack;
    assert.equal(clientLogLevel(logLevel.ERROR, { message: 'Error when calling eachBatch', stack }), 'debug');
  });

  it('keeps real errors and warnings at their level', () => {
    assert.equal(clientLogLevel(logLevel.ERROR, { message: 'Crash', error: 'Connection refused' }), 'error');
    assert.equal(clientLogLevel(logLevel.WARN, { message: 'Retrying' }), 'warn');
    assert.equal(clientLogLevel(logLevel.INFO, { message: 'Consumer has joined the group' }), 'debug');
  });
});
