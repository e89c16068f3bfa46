/**
 * The one topic provisioner: lane, state, dead-letter, heartbeat and chunk topics are all created
 * here, idempotently. Topics are created by the pipeline rather than by broker auto-creation so
 * that partitions, compaction and size limits are what the pipeline expects.
 */
import kafkajs from 'kafkajs';
import type { ITopicConfig } from 'kafkajs';
import type { Kafka } from './client.ts';
import { LANES, SERVICES, topicsFor } from './topics.ts';

// kafkajs is CommonJS and this enum is not visible to ESM named imports.
const { ConfigResourceTypes } = kafkajs;

export const DEFAULT_PARTITIONS = 6;
/** Record limit of lane, state and DLQ topics (16 MiB; outbox payloads are bounded far below it). */
export const PIPELINE_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** Topic-level configs this topic must have (others are left as they are). */
  configs: Record<string, string>;
}

/**
 * Lane topics and the state topic get `partitions` partitions (keyed by document, so per-document
 * order holds at any count); dead-letter and heartbeat topics one.
 */
export function pipelineTopics(prefix: string, partitions: number = DEFAULT_PARTITIONS): TopicSpec[] {
  const topics = topicsFor(prefix);
  // The connector's producer.override.max.request.size and DLQ_MAX_MESSAGE_BYTES: one limit.
  const max = { 'max.message.bytes': String(PIPELINE_MAX_MESSAGE_BYTES) };
  return [
    ...LANES.map((lane) => ({ topic: topics.lane(lane), partitions, configs: { ...max } })),
    { topic: topics.state, partitions, configs: { 'cleanup.policy': 'compact', ...max } },
    ...SERVICES.map((service) => ({ topic: topics.dlq(service), partitions: 1, configs: { ...max } })),
    { topic: topics.heartbeat, partitions: 1, configs: {} },
  ];
}

/**
 * A chunk record holds a whole document: an 8 MiB body at the default chunking is about 12,000
 * chunks, ~30 MB at 384 dimensions. A record over this limit cannot succeed on retry: the producer
 * classifies it `record_too_large` and the event is dead-lettered (never retried forever).
 */
export const CHUNK_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * A model's chunk topic, keyed like the lanes (as many partitions keep the writer as parallel).
 * Provisioned by `connectors apply` for the configured model and by the embedder and the writer of
 * any model when they start, so neither waits for the other on a new model.
 */
export function chunkTopicSpec(topic: string, partitions = DEFAULT_PARTITIONS): TopicSpec {
  return { topic, partitions, configs: { 'max.message.bytes': String(CHUNK_MAX_MESSAGE_BYTES) } };
}

export interface TopicProvisionReport {
  created: string[];
  existing: string[];
  /** Existing topics whose configs were changed to match (e.g. cleanup.policy). */
  reconfigured: string[];
  /** Problems left for an operator (partition count is never changed: it would move keys). */
  warnings: string[];
}

/** Creates missing topics and aligns the configs of existing ones. Running it twice changes nothing. */
export async function provisionTopics(kafka: Kafka, specs: TopicSpec[]): Promise<TopicProvisionReport> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await provisionWith(admin, specs);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function provisionWith(admin: kafkajs.Admin, specs: TopicSpec[]): Promise<TopicProvisionReport> {
  const report: TopicProvisionReport = { created: [], existing: [], reconfigured: [], warnings: [] };
  const present = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !present.has(s.topic));
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((s) => ({
      topic: s.topic,
      numPartitions: s.partitions,
      replicationFactor: 1,
      configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
    }));
    try {
      await admin.createTopics({ topics, waitForLeaders: true });
    } catch (error) {
      // Another process created it between the listing and the creation: that is the goal.
      if (!String((error as Error).message).includes('already exists')) throw error;
    }
    report.created.push(...missing.map((s) => s.topic));
  }

  const existingSpecs = specs.filter((s) => present.has(s.topic));
  if (existingSpecs.length === 0) return report;
  report.existing.push(...existingSpecs.map((s) => s.topic));

  const metadata = await admin.fetchTopicMetadata({ topics: existingSpecs.map((s) => s.topic) });
  for (const t of metadata.topics) {
    const spec = existingSpecs.find((s) => s.topic === t.name);
    if (spec && t.partitions.length !== spec.partitions) {
      report.warnings.push(
        `${t.name} has ${t.partitions.length} partitions, ${spec.partitions} wanted; left unchanged (adding partitions moves keys)`,
      );
    }
  }

  const withConfigs = existingSpecs.filter((s) => Object.keys(s.configs).length > 0);
  if (withConfigs.length === 0) return report;
  const described = await admin.describeConfigs({
    resources: withConfigs.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.topic })),
    includeSynonyms: false,
  });
  for (const resource of described.resources) {
    const spec = withConfigs.find((s) => s.topic === resource.resourceName);
    if (!spec) continue;
    const wrong = Object.entries(spec.configs).filter(
      ([name, value]) => resource.configEntries.find((e) => e.configName === name)?.configValue !== value,
    );
    if (wrong.length === 0) continue;
    // AlterConfigs replaces a topic's whole override set: keep the overrides it already has.
    const TOPIC_CONFIG_SOURCE = 1;
    const kept = resource.configEntries
      .filter((e) => e.configSource === TOPIC_CONFIG_SOURCE && !(e.configName in spec.configs))
      .map((e) => ({ name: e.configName, value: e.configValue }));
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: spec.topic,
          configEntries: [...kept, ...Object.entries(spec.configs).map(([name, value]) => ({ name, value }))],
        },
      ],
    });
    report.reconfigured.push(spec.topic);
  }
  return report;
}
