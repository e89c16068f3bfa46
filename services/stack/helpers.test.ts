import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateSourceList, upstreamVersionOfDsc } from './apt.ts';
import { listsDebeziumPostgres, DEBEZIUM_POSTGRES_CONNECTOR } from './components/connect.ts';
import { javaMajorVersion, javaReleaseMajor } from './components/jvm.ts';
import { newClusterId } from './components/kafka.ts';
import { controlDefaultVersion, quoteIdent, stackDatabases } from './components/postgres.ts';
import { downLine, statusLine, upLine } from './format.ts';
import { logFile, pgRootFor, pidFile, stackPaths } from './paths.ts';
import { commandLine } from './procs.ts';

describe('paths', () => {
  it('lays the stack home out in fixed folders', () => {
    const p = stackPaths('/h');
    assert.equal(p.pgLink, '/h/data/pg');
    assert.equal(logFile(p, 'kafka'), '/h/logs/kafka.log');
    assert.equal(pidFile(p, 'connect'), '/h/run/connect.pid');
    assert.match(p.pluginDir, /^\/h\/cache\/connect-plugins-debezium-3\.4\.3\.Final$/);
  });
  it('keeps the cluster in the home when the server user can reach it, else in a per-home dir', () => {
    assert.equal(pgRootFor('/h', true), '/h/data/pg-cluster');
    const a = pgRootFor('/root/.cache/vecsync-stack', false);
    assert.match(a, /^\/var\/lib\/vecsync-stack\/pg-[0-9a-f]{10}$/);
    assert.equal(pgRootFor('/root/.cache/vecsync-stack/', false), a);
    assert.notEqual(pgRootFor('/tmp/other', false), a);
  });
});

describe('apt helpers', () => {
  it('reads the upstream version from a .dsc name', () => {
    assert.equal(upstreamVersionOfDsc('pgvector_0.8.0-1.dsc'), '0.8.0');
    assert.equal(upstreamVersionOfDsc('/x/pgvector_0.8.1-2+b1.dsc'), '0.8.1');
    assert.equal(upstreamVersionOfDsc('pgvector_1:0.9.0-1.dsc'), '0.9.0');
    assert.equal(upstreamVersionOfDsc('pgvector_0.8.0.orig.tar.gz'), undefined);
  });
  it('writes a signed deb-src entry for one suite', () => {
    assert.equal(
      privateSourceList('trixie'),
      'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n',
    );
  });
});

describe('postgres helpers', () => {
  it('creates the pipeline, sink and registry databases, plus any the URLs name on this cluster', () => {
    const ports = { pg: 55432, kafka: 19092, kafkaController: 19093, registry: 18081, connect: 18083 };
    const config = {
      ports,
      sourceUrl: 'postgres://postgres@127.0.0.1:55432/vecsync',
      pgvectorUrl: 'postgres://postgres@127.0.0.1:55432/vecsync_vectors',
    };
    assert.deepEqual(stackDatabases(config), {
      all: ['vecsync', 'vecsync_vectors', 'apicurio'],
      vector: ['vecsync_vectors'],
    });
    const custom = {
      ports,
      pgvectorUrl: 'postgres://postgres@127.0.0.1:55432/vectors2',
      sourceUrl: 'postgres://db.example:5432/elsewhere',
    };
    assert.deepEqual(stackDatabases(custom), {
      all: ['vecsync', 'vecsync_vectors', 'vectors2', 'apicurio'],
      vector: ['vecsync_vectors', 'vectors2'],
    });
  });
  it('reads default_version from a control file', () => {
    assert.equal(controlDefaultVersion("comment = 'vector'\ndefault_version = '0.8.0'\n"), '0.8.0');
    assert.equal(controlDefaultVersion('comment = x'), undefined);
  });
  it('quotes identifiers', () => {
    assert.equal(quoteIdent('a"b'), '"a""b"');
  });
});

describe('java versions', () => {
  it('parses java -version and release files', () => {
    assert.equal(javaMajorVersion('openjdk version "17.0.15" 2025-04-15'), 17);
    assert.equal(javaMajorVersion('java version "1.8.0_392"'), 8);
    assert.equal(javaMajorVersion('nothing'), undefined);
    assert.equal(javaReleaseMajor('IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="25.0.3"\n'), 25);
    assert.equal(javaReleaseMajor('JAVA_VERSION="21"'), 21);
  });
});

describe('connect and kafka helpers', () => {
  it('recognises the Debezium PostgreSQL connector in a plugin list', () => {
    assert.equal(listsDebeziumPostgres([{ class: 'x' }, { class: DEBEZIUM_POSTGRES_CONNECTOR }]), true);
    assert.equal(listsDebeziumPostgres([{ class: 'x' }]), false);
    assert.equal(listsDebeziumPostgres({}), false);
  });
  it('makes KRaft cluster ids of 22 base64url characters', () => {
    assert.match(newClusterId(), /^[A-Za-z0-9_-]{22}$/);
  });
});

describe('format', () => {
  it('prints one aligned line per component', () => {
    assert.equal(upLine('postgres', 'up', 1234, 55432, 2100), 'postgres  up  pid 1234  port 55432  (2.1s)');
    assert.equal(upLine('kafka', 'already up', 7, 19092), 'kafka     already up  pid 7  port 19092');
    assert.equal(downLine('connect', 'not running'), 'connect   not running');
    const line = statusLine({
      name: 'postgres',
      state: 'up',
      version: '15.20',
      port: 55432,
      pid: 9,
      log: '/l/postgres.log',
      details: { pgvector: '0.8.0', walLevel: 'logical' },
    });
    assert.match(line, /^postgres {2}up .*pgvector 0\.8\.0 {2}wal_level logical {2}log \/l\/postgres\.log$/);
  });
});

describe('commandLine', () => {
  it('keeps log headers short by abbreviating classpaths', () => {
    const cp = Array.from({ length: 90 }, (_, i) => `/m2/some/long/path/jar-${i}.jar`).join(':');
    assert.equal(
      commandLine('java', ['-cp', cp, 'kafka.Kafka']),
      'java -cp /m2/some/long/path/jar-0.jar:…(90 entries) kafka.Kafka',
    );
    assert.equal(commandLine('pg_ctl', ['stop', '-D', '/d']), 'pg_ctl stop -D /d');
  });
});
