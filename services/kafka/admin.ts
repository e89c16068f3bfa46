import kafkajs from 'kafkajs';
import type { Kafka } from './client.ts';

// kafkajs is CommonJS and this enum is not visible to ESM named imports.
const { ConfigResourceTypes } = kafkajs;

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** Compacted topics keep the latest value per key (the state topic). */
  compact?: boolean;
  /** Largest message the topic accepts (chunk records of long documents exceed the 1 MB default). */
  maxMessageBytes?: number;
}

/** Creates missing topics; existing ones are left as they are. Idempotent. */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    // Topics created by an older version may lack the size limit; raise it in place.
    const resize = specs.filter((s) => existing.has(s.topic) && s.maxMessageBytes);
    if (resize.length > 0) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: resize.map((s) => ({
          type: ConfigResourceTypes.TOPIC,
          name: s.topic,
          configEntries: [{ name: 'max.message.bytes', value: String(s.maxMessageBytes) }],
        })),
      });
    }
    if (missing.length === 0) return [];
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: 1,
        configEntries: [
          ...(s.compact ? [{ name: 'cleanup.policy', value: 'compact' }] : []),
          ...(s.maxMessageBytes ? [{ name: 'max.message.bytes', value: String(s.maxMessageBytes) }] : []),
        ],
      })),
    });
    return missing.map((s) => s.topic);
  } finally {
    await admin.disconnect();
  }
}
