/**
 * The composition root shared by every service: one config, one logger, one Kafka client, one
 * producer, one source pool, one sink (with its one pool). `vecsync run all` builds it once for
 * every consumer.
 */
import pg from 'pg';
import type { Config } from '../../config/index.ts';
import { guardPool } from '../../adapters/postgres/pool.ts';
import { modelKey } from '../../domain/types.ts';
import { createLogger, type Logger } from '../../adapters/telemetry/log.ts';
import { createKafka, type Kafka } from '../../adapters/kafka/client.ts';
import { createProducer, type Producer } from '../../adapters/kafka/producer.ts';
import { topicsFor, type Lane, type Topics, LANES } from '../../adapters/kafka/topics.ts';
import { createSink } from '../../adapters/sinks/index.ts';
import type { IndexSpec, Sink } from '../../adapters/sinks/types.ts';

export interface Runtime {
  config: Config;
  log: Logger;
  kafka: Kafka;
  producer: Producer;
  source: pg.Pool;
  /** The configured sink, shared by the writer, the propagator and the reconciler of this process. */
  sink: Sink;
  topics: Topics;
  /** The active embedding model's index. */
  activeIndex: IndexSpec;
  /**
   * Consumer group of a service. Services that work per embedding model have a group per model, so
   * deployments for two models under one prefix never share (and split) a group: the embedder's is
   * `<prefix>.embedder.<model key>` (each lane appends `.<lane>`), the writer's
   * `<prefix>.<sink name>.writer.<model key>`. The propagator and the reconciler serve every model
   * of their sink: `<prefix>.<sink name>.<service>`.
   */
  groupId(service: string): string;
  /** New consumer groups start at the end of their topics (the demo, which writes its own input). */
  newGroupsAtEnd: boolean;
  /** Lane label of a topic, for metrics. */
  laneOf(topic: string): string;
  close(): Promise<void>;
}

/** Services with one consumer group per embedding model (see `Runtime.groupId`). */
export const PER_MODEL_SERVICES: readonly string[] = ['embedder', 'writer'];

/** The consumer group of `service` for the configured sink and embedding model (pure). */
export function groupIdFor(
  config: Pick<Config, 'groupPrefix'> & {
    sink: Pick<Config['sink'], 'name'>;
    embedder: Pick<Config['embedder'], 'model' | 'version'>;
  },
  service: string,
  key: string = modelKey(config.embedder.model, config.embedder.version),
): string {
  if (service === 'embedder') return `${config.groupPrefix}.embedder.${key}`;
  const base = `${config.groupPrefix}.${config.sink.name}.${service}`;
  return PER_MODEL_SERVICES.includes(service) ? `${base}.${key}` : base;
}

export async function createRuntime(
  config: Config,
  name = 'vecsync',
  options: { newGroupsAtEnd?: boolean } = {},
): Promise<Runtime> {
  const log = createLogger(config.logLevel, name);
  const kafka = createKafka(config.kafkaBrokers, `${config.groupPrefix}-${name}`, log);
  const producer = await createProducer(kafka);
  // A client losing its connection (database restart) must not crash the process.
  const source = guardPool(
    new pg.Pool({ connectionString: config.sourceUrl, max: 10, application_name: `vecsync-${name}` }),
    (error) => log.warn({ err: error.message }, 'source pool client error'),
  );
  const topics = topicsFor(config.topicPrefix);
  const laneByTopic = new Map<string, string>(LANES.map((lane: Lane) => [topics.lane(lane), lane]));
  const sink = await createSink(config, { log });
  return {
    config,
    log,
    kafka,
    producer,
    source,
    sink,
    topics,
    activeIndex: {
      modelKey: modelKey(config.embedder.model, config.embedder.version),
      dimensions: config.embedder.dimensions,
    },
    groupId: (service) => groupIdFor(config, service),
    newGroupsAtEnd: options.newGroupsAtEnd ?? false,
    laneOf: (topic) => laneByTopic.get(topic) ?? (topic.includes('.chunks.') ? 'chunks' : 'other'),
    async close() {
      await producer.close().catch(() => undefined);
      await sink.close().catch(() => undefined);
      await source.end().catch(() => undefined);
    },
  };
}
