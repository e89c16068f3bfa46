/**
 * Pure renderers of every config file and command line the stack writes or runs. Kept free
 * of I/O so they are unit-tested (render.test.ts) and so `up` can tell whether a rendered
 * file changed.
 */
import type { Ports } from './types.ts';

/** Java `.properties` text from an ordered record; values are written as given. */
export function renderProperties(header: string, props: Record<string, string | number | boolean>): string {
  const lines = header.split('\n').map((l) => `# ${l}`.trimEnd());
  for (const [key, value] of Object.entries(props)) {
    if (/[\s=:]/.test(key)) throw new TypeError(`invalid property key ${JSON.stringify(key)}`);
    lines.push(`${key}=${String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
  }
  return lines.join('\n') + '\n';
}

export interface KafkaServerOptions {
  ports: Ports;
  logDir: string;
}

/** server.properties of the single-node KRaft broker+controller. Loopback only. */
export function kafkaServerProperties({
  ports,
  logDir,
}: KafkaServerOptions): Record<string, string | number | boolean> {
  return {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${ports.kafkaController}`,
    listeners: `PLAINTEXT://127.0.0.1:${ports.kafka},CONTROLLER://127.0.0.1:${ports.kafkaController}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${ports.kafka}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': logDir,
    // One broker: every internal topic has one replica.
    'offsets.topic.replication.factor': 1,
    // 50 partitions (the default) only slow down the first group coordinator lookup here.
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    // Tests create many short-lived groups; waiting 3 s for more members only slows them down.
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': true,
    'num.partitions': 1,
    'log.retention.hours': 168,
    // Every pipeline topic sets max.message.bytes itself (16 MiB lanes/state/DLQ, 64 MiB chunk
    // topics); auto-created topics and the replica fetcher follow the same ceiling.
    'message.max.bytes': 16 * 1024 * 1024,
    'replica.fetch.max.bytes': 64 * 1024 * 1024,
  };
}

export interface ConnectWorkerOptions {
  ports: Ports;
  pluginPath: string;
}

/** worker.properties of the Kafka Connect distributed worker. */
export function connectWorkerProperties({
  ports,
  pluginPath,
}: ConnectWorkerOptions): Record<string, string | number | boolean> {
  return {
    'bootstrap.servers': `127.0.0.1:${ports.kafka}`,
    'group.id': 'vecsync-stack-connect',
    'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable': false,
    'value.converter.schemas.enable': false,
    // Not under VECSYNC_TOPIC_PREFIX: these belong to the worker, not to the pipeline.
    'config.storage.topic': 'vecsync-stack-connect-configs',
    'offset.storage.topic': 'vecsync-stack-connect-offsets',
    'status.storage.topic': 'vecsync-stack-connect-status',
    'config.storage.replication.factor': 1,
    'offset.storage.replication.factor': 1,
    'status.storage.replication.factor': 1,
    'offset.storage.partitions': 5,
    'status.storage.partitions': 1,
    'offset.flush.interval.ms': 1000,
    listeners: `http://127.0.0.1:${ports.connect}`,
    'rest.advertised.host.name': '127.0.0.1',
    'rest.advertised.port': ports.connect,
    'plugin.path': pluginPath,
    // Debezium 3.x and Kafka's own plugins ship ServiceLoader manifests; skipping the
    // reflective scan of ~90 jars saves tens of seconds of start-up on 2 cores.
    'plugin.discovery': 'service_load',
    // Connector configs may tune their producer (e.g. linger, compression).
    'connector.client.config.override.policy': 'All',
  };
}

/** Log4j2 XML config that writes one rolling file and keeps the console quiet. */
export function log4j2Xml(logFilePath: string, quietLoggers: readonly string[] = []): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const quiet = quietLoggers.map((l) => `    <Logger name="${esc(l)}" level="WARN"/>`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by vecsync stack; edits are overwritten on the next \`stack up\`. -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="${esc(logFilePath)}" filePattern="${esc(logFilePath)}.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
${quiet}
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
`;
}

/** pg_hba.conf: trust on the unix socket and on loopback, nothing else. */
export function pgHbaConf(): string {
  return [
    '# Written by vecsync stack: a local development cluster, reachable on loopback only.',
    'local   all          all                  trust',
    'host    all          all   127.0.0.1/32   trust',
    'host    all          all   ::1/128        trust',
    'local   replication  all                  trust',
    'host    replication  all   127.0.0.1/32   trust',
    'host    replication  all   ::1/128        trust',
    '',
  ].join('\n');
}

export interface PostgresOptions {
  dataDir: string;
  socketDir: string;
  port: number;
}

/** Server settings passed as `-c` flags, so the data dir's postgresql.conf stays initdb's. */
export function postgresSettings({
  socketDir,
  port,
}: Omit<PostgresOptions, 'dataDir'>): Record<string, string | number> {
  return {
    port,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    wal_level: 'logical',
    max_connections: 200,
    max_replication_slots: 10,
    max_wal_senders: 10,
    // A stalled or abandoned Debezium slot must not fill the disk with retained WAL.
    max_slot_wal_keep_size: '2GB',
    shared_buffers: '256MB',
    // The stack's log file is the server's stderr; the collector would write elsewhere.
    logging_collector: 'off',
    log_line_prefix: '%m [%p] %q%u@%d ',
  };
}

export function postgresArgs(opts: PostgresOptions): string[] {
  const args = ['-D', opts.dataDir];
  for (const [k, v] of Object.entries(postgresSettings(opts))) args.push('-c', `${k}=${v}`);
  return args;
}

export interface JavaProcessOptions {
  component: string;
  stackHome: string;
  heap: { min: string; max: string };
  systemProperties?: Record<string, string | number | boolean>;
  /** Either a main class with a classpath, or an executable jar. */
  main: { classpath: string; className: string } | { jar: string };
  args?: string[];
}

/**
 * The `java` command line of a stack JVM. The two `vecsync.stack.*` properties mark the
 * process so that `down` and `status` only ever act on a pid that is really this component
 * of this stack home (a stale pid file may name a recycled pid).
 */
export function javaArgs(o: JavaProcessOptions): string[] {
  const args = [
    `-Xms${o.heap.min}`,
    `-Xmx${o.heap.max}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    ...processMarker(o.component, o.stackHome),
  ];
  for (const [k, v] of Object.entries(o.systemProperties ?? {})) args.push(`-D${k}=${v}`);
  if ('jar' in o.main) args.push('-jar', o.main.jar);
  else args.push('-cp', o.main.classpath, o.main.className);
  return [...args, ...(o.args ?? [])];
}

export function processMarker(component: string, stackHome: string): string[] {
  return [`-Dvecsync.stack.component=${component}`, `-Dvecsync.stack.home=${stackHome}`];
}

export interface RegistryOptions {
  ports: Ports;
  /** Port of Quarkus' management interface; 3.3 enables it on 9000 by default. */
  managementPort: number;
  tmpDir: string;
}

/** System properties of Apicurio Registry: loopback, durable SQL storage in the stack's PostgreSQL. */
export function registrySystemProperties({
  ports,
  managementPort,
  tmpDir,
}: RegistryOptions): Record<string, string | number> {
  return {
    'quarkus.http.host': '127.0.0.1',
    'quarkus.http.port': ports.registry,
    // `quarkus.management.enabled` is fixed at build time, so the interface is moved, not disabled.
    'quarkus.management.host': '127.0.0.1',
    'quarkus.management.port': managementPort,
    // Durable storage: Kafka messages carry schema ids, which must survive a registry restart.
    'apicurio.storage.kind': 'sql',
    'apicurio.storage.sql.kind': 'postgresql',
    'apicurio.datasource.url': `jdbc:postgresql://127.0.0.1:${ports.pg}/apicurio`,
    'apicurio.datasource.username': 'postgres',
    // The cluster trusts loopback, so the password is never asked for; an empty value would
    // leave the ${...} expansion in the registry's application.properties unresolved.
    'apicurio.datasource.password': 'unused',
    // The defaults (20 initial, 20 min, 100 max) hold 20 idle connections open.
    'apicurio.datasource.jdbc.initial-size': 2,
    'apicurio.datasource.jdbc.min-size': 2,
    'apicurio.datasource.jdbc.max-size': 20,
    'apicurio.storage.snapshot.location': tmpDir,
    'java.io.tmpdir': tmpDir,
  };
}

/** The registry's management port: next to its HTTP port, so it is never Quarkus' 9000. */
export function registryManagementPort(ports: Ports): number {
  return ports.registry < 65535 ? ports.registry + 1 : ports.registry - 1;
}
