import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortInUseError } from './errors.ts';
import { duplicatePorts, parseSsListener } from './ports.ts';

describe('parseSsListener', () => {
  it('reads the port and the holding process', () => {
    const line = 'LISTEN 0      244        127.0.0.1:5432       0.0.0.0:*    users:(("postgres",pid=2185,fd=5))';
    assert.deepEqual(parseSsListener(line), { port: 5432, holder: 'postgres pid 2185' });
  });
  it('reads IPv6 and mapped addresses', () => {
    assert.deepEqual(parseSsListener('LISTEN 0 50 [::ffff:127.0.0.1]:19092 *:* users:(("java",pid=12,fd=1))'), {
      port: 19092,
      holder: 'java pid 12',
    });
    assert.equal(parseSsListener('LISTEN 0 4096 [::1]:4369 [::]:*')?.port, 4369);
  });
  it('leaves the holder out when ss cannot see it, and ignores junk', () => {
    assert.deepEqual(parseSsListener('LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*'), { port: 2024, holder: undefined });
    assert.equal(parseSsListener(''), undefined);
    assert.equal(parseSsListener('State Recv-Q Send-Q Local Address:Port'), undefined);
  });
});

describe('duplicatePorts', () => {
  it('finds a port configured for two components', () => {
    assert.deepEqual(
      duplicatePorts([
        { port: 1, component: 'a' },
        { port: 2, component: 'b' },
        { port: 1, component: 'c' },
      ]),
      [{ port: 1, components: ['a', 'c'] }],
    );
    assert.deepEqual(duplicatePorts([{ port: 1, component: 'a' }]), []);
  });
});

describe('PortInUseError', () => {
  it('is one line naming the port, the component and the holder', () => {
    const e = new PortInUseError(19092, 'kafka', 'java pid 12');
    assert.equal(e.message, 'port 19092 (kafka) is already in use by another process (java pid 12)');
    assert.equal(e.message.includes('\n'), false);
    assert.equal(e.retriable, false);
  });
});
