/**
 * The topics the pipeline needs before the connector runs, created idempotently with the kafkajs
 * admin client. Topics are created here rather than by broker auto-creation so that partitions
 * and the state topic's compaction are what the pipeline expects.
 */
import kafkajs from 'kafkajs';
import type { Admin, ITopicConfig } from 'kafkajs';
import { LANES, SERVICES, topicsFor } from '../kafka/topics.ts';
import { heartbeatTopic } from './render.ts';

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;

export const DEFAULT_PARTITIONS = 6;

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  /** Topic-level configs this topic must have (others are left as they are). */
  configs: Record<string, string>;
}

/**
 * Lane topics and the state topic get `partitions` partitions (keyed by document, so per-document
 * order holds at any count); dead-letter and heartbeat topics one.
 */
export function pipelineTopics(prefix: string, partitions: number = DEFAULT_PARTITIONS): TopicSpec[] {
  const topics = topicsFor(prefix);
  return [
    ...LANES.map((lane) => ({ topic: topics.lane(lane), numPartitions: partitions, configs: {} })),
    { topic: topics.state, numPartitions: partitions, configs: { 'cleanup.policy': 'compact' } },
    ...SERVICES.map((service) => ({ topic: topics.dlq(service), numPartitions: 1, configs: {} })),
    { topic: heartbeatTopic(prefix), numPartitions: 1, configs: {} },
  ];
}

export interface TopicProvisionReport {
  created: string[];
  existing: string[];
  /** Existing topics whose configs were changed to match (e.g. cleanup.policy). */
  reconfigured: string[];
  /** Problems left for an operator (partition count is never changed: it would move keys). */
  warnings: string[];
}

/** An admin client whose logs go to stderr (stdout stays clean for --json). */
export function createAdmin(brokers: string[], clientId = 'vecsync-admin'): Admin {
  const kafka = new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.ERROR,
    logCreator:
      () =>
      ({ namespace, log }) =>
        process.stderr.write(`kafkajs ${namespace}: ${log.message}\n`),
    retry: { retries: 5, initialRetryTime: 200 },
  });
  return kafka.admin();
}

/** Creates missing topics and aligns the configs of existing ones. Running it twice changes nothing. */
export async function provisionTopics(admin: Admin, specs: TopicSpec[]): Promise<TopicProvisionReport> {
  const report: TopicProvisionReport = { created: [], existing: [], reconfigured: [], warnings: [] };
  const present = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !present.has(s.topic));
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((s) => ({
      topic: s.topic,
      numPartitions: s.numPartitions,
      configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
    }));
    await admin.createTopics({ topics, waitForLeaders: true });
    report.created.push(...missing.map((s) => s.topic));
  }

  const existingSpecs = specs.filter((s) => present.has(s.topic));
  if (existingSpecs.length === 0) return report;
  report.existing.push(...existingSpecs.map((s) => s.topic));

  const metadata = await admin.fetchTopicMetadata({ topics: existingSpecs.map((s) => s.topic) });
  for (const t of metadata.topics) {
    const spec = existingSpecs.find((s) => s.topic === t.name);
    if (spec && t.partitions.length !== spec.numPartitions) {
      report.warnings.push(
        `${t.name} has ${t.partitions.length} partitions, ${spec.numPartitions} wanted; left unchanged (adding partitions moves keys)`,
      );
    }
  }

  const described = await admin.describeConfigs({
    resources: existingSpecs.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.topic })),
    includeSynonyms: false,
  });
  for (const resource of described.resources) {
    const spec = existingSpecs.find((s) => s.topic === resource.resourceName);
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
