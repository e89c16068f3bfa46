import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ports } from './types.ts';
import {
  connectWorkerProperties,
  javaArgs,
  kafkaServerProperties,
  log4j2Xml,
  pgHbaConf,
  postgresArgs,
  registryManagementPort,
  registrySystemProperties,
  renderProperties,
} from './render.ts';

const ports: Ports = { pg: 55432, kafka: 19092, kafkaController: 19093, registry: 18081, connect: 18083 };

describe('renderProperties', () => {
  it('writes a commented header and key=value lines in order', () => {
    const text = renderProperties('line one\nline two', { b: 1, a: 'x', c: true });
    assert.equal(text, '# line one\n# line two\nb=1\na=x\nc=true\n');
  });
  it('escapes backslashes and newlines in values', () => {
    assert.equal(renderProperties('h', { k: 'a\\b\nc' }), '# h\nk=a\\\\b\\nc\n');
  });
  it('rejects keys that would change the meaning of the line', () => {
    assert.throws(() => renderProperties('h', { 'a b': 1 }), TypeError);
    assert.throws(() => renderProperties('h', { 'a=b': 1 }), TypeError);
  });
});

describe('kafkaServerProperties', () => {
  const props = kafkaServerProperties({ ports, logDir: '/s/data/kafka' });
  it('is a combined-mode KRaft node on loopback with the configured ports', () => {
    assert.equal(props['process.roles'], 'broker,controller');
    assert.equal(props['controller.quorum.voters'], '1@127.0.0.1:19093');
    assert.equal(props.listeners, 'PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    assert.equal(props['advertised.listeners'], 'PLAINTEXT://127.0.0.1:19092');
    assert.equal(props['log.dirs'], '/s/data/kafka');
  });
  it('gives every internal topic one replica and no initial rebalance delay', () => {
    for (const k of [
      'offsets.topic.replication.factor',
      'transaction.state.log.replication.factor',
      'share.coordinator.state.topic.replication.factor',
      'transaction.state.log.min.isr',
      'share.coordinator.state.topic.min.isr',
    ]) {
      assert.equal(props[k], 1, k);
    }
    assert.equal(props['group.initial.rebalance.delay.ms'], 0);
  });
  it('follows port overrides', () => {
    const p = kafkaServerProperties({ ports: { ...ports, kafka: 29092, kafkaController: 29093 }, logDir: '/x' });
    assert.equal(p.listeners, 'PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093');
  });
});

describe('connectWorkerProperties', () => {
  const props = connectWorkerProperties({ ports, pluginPath: '/s/plugins' });
  it('binds REST to loopback on the connect port and points at the broker', () => {
    assert.equal(props.listeners, 'http://127.0.0.1:18083');
    assert.equal(props['rest.advertised.port'], 18083);
    assert.equal(props['bootstrap.servers'], '127.0.0.1:19092');
    assert.equal(props['plugin.path'], '/s/plugins');
  });
  it('uses one replica for its storage topics, which stay out of the pipeline prefix', () => {
    for (const t of ['config', 'offset', 'status']) {
      assert.equal(props[`${t}.storage.replication.factor`], 1);
      assert.match(String(props[`${t}.storage.topic`]), /^vecsync-stack-connect-/);
    }
  });
});

describe('log4j2Xml', () => {
  it('writes to the given file and escapes XML', () => {
    const xml = log4j2Xml('/logs/a&b.log', ['noisy.logger']);
    assert.match(xml, /fileName="\/logs\/a&amp;b\.log"/);
    assert.match(xml, /<Logger name="noisy.logger" level="WARN"\/>/);
    assert.doesNotMatch(xml, /<Console/);
  });
});

describe('postgres', () => {
  it('starts with logical WAL, loopback only, its own socket dir and a WAL guard', () => {
    const args = postgresArgs({ dataDir: '/pg/data', socketDir: '/pg/run', port: 55432 });
    assert.deepEqual(args.slice(0, 2), ['-D', '/pg/data']);
    const settings = new Map<string, string>();
    for (let i = 2; i < args.length; i += 2) {
      assert.equal(args[i], '-c');
      const [k, v] = (args[i + 1] ?? '').split('=');
      settings.set(k ?? '', v ?? '');
    }
    assert.equal(settings.get('wal_level'), 'logical');
    assert.equal(settings.get('listen_addresses'), '127.0.0.1');
    assert.equal(settings.get('port'), '55432');
    assert.equal(settings.get('unix_socket_directories'), '/pg/run');
    assert.equal(settings.get('max_slot_wal_keep_size'), '2GB');
    assert.equal(settings.get('max_connections'), '200');
  });
  it('trusts only the socket and loopback', () => {
    const rules = pgHbaConf()
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    for (const rule of rules) {
      const cols = rule.split(/\s+/);
      if (cols[0] === 'host') assert.ok(['127.0.0.1/32', '::1/128'].includes(cols[3] ?? ''), rule);
      else assert.equal(cols[0], 'local');
    }
  });
});

describe('registry', () => {
  it('uses durable SQL storage in the stack PostgreSQL and moves the management port off 9000', () => {
    const props = registrySystemProperties({ ports, managementPort: registryManagementPort(ports), tmpDir: '/t' });
    assert.equal(props['apicurio.storage.kind'], 'sql');
    assert.equal(props['apicurio.storage.sql.kind'], 'postgresql');
    assert.equal(props['apicurio.datasource.url'], 'jdbc:postgresql://127.0.0.1:55432/apicurio');
    assert.equal(props['quarkus.http.port'], 18081);
    assert.equal(props['quarkus.http.host'], '127.0.0.1');
    assert.equal(props['quarkus.management.port'], 18082);
    assert.notEqual(props['quarkus.management.port'], 9000);
  });
  it('keeps the management port inside the port range', () => {
    assert.equal(registryManagementPort({ ...ports, registry: 65535 }), 65534);
  });
});

describe('javaArgs', () => {
  it('marks the process with its component and stack home, then runs the main class', () => {
    const args = javaArgs({
      component: 'kafka',
      stackHome: '/s',
      heap: { min: '256m', max: '768m' },
      systemProperties: { 'log4j2.configurationFile': '/s/conf/k.xml' },
      main: { classpath: 'a.jar:b.jar', className: 'kafka.Kafka' },
      args: ['/s/conf/server.properties'],
    });
    assert.ok(args.includes('-Xmx768m'));
    assert.ok(args.includes('-Dvecsync.stack.component=kafka'));
    assert.ok(args.includes('-Dvecsync.stack.home=/s'));
    assert.ok(args.includes('-Dlog4j2.configurationFile=/s/conf/k.xml'));
    assert.deepEqual(args.slice(-4), ['-cp', 'a.jar:b.jar', 'kafka.Kafka', '/s/conf/server.properties']);
  });
  it('runs an executable jar', () => {
    const args = javaArgs({
      component: 'registry',
      stackHome: '/s',
      heap: { min: '1m', max: '2m' },
      main: { jar: '/r/quarkus-run.jar' },
    });
    assert.deepEqual(args.slice(-2), ['-jar', '/r/quarkus-run.jar']);
  });
});
