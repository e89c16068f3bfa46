/**
 * How `connectors apply` brings an existing connector back to RUNNING, against a fake Kafka Connect
 * REST API (the real one is exercised by test/slot-recovery.test.ts): a paused or stopped connector
 * is resumed, a failed one restarted (failed instances only), a running one left alone, and a FAILED
 * state still reported just after the restart request does not fail the wait.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { bringBack, ConnectorFailedError, waitUntilRunning } from './apply.ts';
import { ConnectClient, type ConnectorStatus, type ConnectState } from './connect-client.ts';

interface FakeConnector {
  state: ConnectState;
  task: ConnectState | null;
  /** Status reads that still show the old state after a restart or resume. */
  lagReads: number;
  next?: { state: ConnectState; task: ConnectState | null };
  requests: string[];
}

const connector: FakeConnector = { state: 'RUNNING', task: 'RUNNING', lagReads: 0, requests: [] };
const config = { 'connector.class': 'x', 'tasks.max': '1' };

function status(): ConnectorStatus {
  if (connector.next && connector.lagReads-- <= 0) {
    connector.state = connector.next.state;
    connector.task = connector.next.task;
    delete connector.next;
  }
  return {
    name: 'c',
    connector: { state: connector.state, worker_id: 'w' },
    tasks:
      connector.task === null
        ? []
        : [
            {
              id: 0,
              state: connector.task,
              worker_id: 'w',
              ...(connector.task === 'FAILED' ? { trace: 'boom\n at x' } : {}),
            },
          ],
  };
}

let server: Server;
let client: ConnectClient;

before(async () => {
  server = createServer((req, res) => {
    const route = `${req.method} ${req.url}`;
    connector.requests.push(route);
    const json = (code: number, body?: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    if (route === 'GET /connectors/c/status') return json(200, status());
    if (route === 'GET /connectors/c/tasks') return json(200, [{ id: { connector: 'c', task: 0 }, config }]);
    if (route === 'PUT /connectors/c/resume' || route.startsWith('POST /connectors/c/restart')) {
      connector.next = { state: 'RUNNING', task: 'RUNNING' };
      return json(202);
    }
    return json(404, { message: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new ConnectClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function reset(state: ConnectState, task: ConnectState | null, lagReads = 0): void {
  Object.assign(connector, { state, task, lagReads, requests: [] });
  delete connector.next;
}

const wait = (failureGraceMs?: number) =>
  waitUntilRunning(
    client,
    { name: 'c', config },
    {
      timeoutMs: 5000,
      pollMs: 20,
      changed: true,
      settleMs: 0,
      ...(failureGraceMs === undefined ? {} : { failureGraceMs }),
    },
  );

describe('bringBack', () => {
  test('a STOPPED or PAUSED connector is resumed', async () => {
    for (const state of ['STOPPED', 'PAUSED'] as const) {
      reset(state, null);
      const lines: string[] = [];
      assert.equal(await bringBack(client, 'c', { changed: false, log: (l) => lines.push(l) }), 'resumed');
      assert.ok(connector.requests.includes('PUT /connectors/c/resume'), connector.requests.join(', '));
      assert.match(lines.join('\n'), new RegExp(`resumed \\(it was ${state}\\)`));
      assert.equal((await wait()).state, 'RUNNING');
    }
  });

  test('a FAILED task with an unchanged config is restarted, failed instances only', async () => {
    reset('RUNNING', 'FAILED');
    assert.equal(await bringBack(client, 'c', { changed: false }), 'restarted');
    assert.ok(
      connector.requests.includes('POST /connectors/c/restart?includeTasks=true&onlyFailed=true'),
      connector.requests.join(', '),
    );
  });

  test('a FAILED task whose config changes is left to the config PUT, which restarts it', async () => {
    reset('RUNNING', 'FAILED');
    assert.equal(await bringBack(client, 'c', { changed: true }), null);
    assert.deepEqual(connector.requests, ['GET /connectors/c/status']);
  });

  test('a running connector is left alone', async () => {
    reset('RUNNING', 'RUNNING');
    assert.equal(await bringBack(client, 'c', { changed: false }), null);
    assert.deepEqual(connector.requests, ['GET /connectors/c/status']);
  });
});

describe('waitUntilRunning after a restart', () => {
  test('the old FAILED state within the grace period is not a failure', async () => {
    reset('RUNNING', 'FAILED', 3);
    await bringBack(client, 'c', { changed: false });
    assert.equal((await wait(2000)).tasks[0]?.state, 'RUNNING');
  });

  test('without a grace period, or past it, FAILED fails the wait with the trace', async () => {
    reset('RUNNING', 'FAILED');
    await assert.rejects(
      wait(),
      (e: unknown) => e instanceof ConnectorFailedError && /task 0 FAILED: boom/.test(e.message),
    );
    reset('RUNNING', 'FAILED');
    await assert.rejects(wait(50), ConnectorFailedError);
  });
});
