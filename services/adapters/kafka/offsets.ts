/**
 * Consumer-group offset operations for `vecsync replay`: replay is an offset reset, and a reset
 * is only safe while nobody consumes with the group (Kafka refuses it anyway; we say why first).
 */
import { ConfigError } from '../../domain/errors.ts';
import type { Kafka } from './client.ts';

export type ReplayTarget = { kind: 'earliest' } | { kind: 'datetime'; at: Date };

export interface ReplayPlan {
  group: string;
  topics: { topic: string; partitions: { partition: number; from: string; to: string }[] }[];
}

/** Parses `--to-earliest` / `--to-datetime ISO` into a target; exactly one must be given. */
export function parseReplayTarget(opts: { toEarliest?: boolean; toDatetime?: string }): ReplayTarget {
  if (opts.toEarliest && opts.toDatetime)
    throw new ConfigError('give one of --to-earliest and --to-datetime, not both');
  if (opts.toEarliest) return { kind: 'earliest' };
  if (opts.toDatetime) {
    const at = new Date(opts.toDatetime);
    if (Number.isNaN(at.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(opts.toDatetime)) {
      throw new ConfigError(`invalid --to-datetime ${JSON.stringify(opts.toDatetime)}: expected an ISO 8601 date-time`);
    }
    return { kind: 'datetime', at };
  }
  throw new ConfigError('give --to-earliest or --to-datetime ISO');
}

/**
 * Moves every partition the group has committed offsets for to the target. Refuses, naming the
 * members, while the group has active members. Returns what moved from where to where.
 */
export async function resetGroup(
  kafka: Kafka,
  group: string,
  target: ReplayTarget,
  dryRun = false,
): Promise<ReplayPlan> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([group]);
    const described = groups[0];
    if (described && described.members.length > 0) {
      const who = described.members.map((m) => `${m.clientId}@${m.clientHost}`).join(', ');
      throw new ConfigError(
        `group ${group} has ${described.members.length} active member(s) (${who}); stop its consumers before replaying`,
      );
    }
    const committed = await admin.fetchOffsets({ groupId: group });
    if (committed.length === 0 || described?.state === 'Dead') {
      throw new ConfigError(
        `group ${group} has no committed offsets: nothing to replay (check the name with vecsync status)`,
      );
    }
    const plan: ReplayPlan = { group, topics: [] };
    for (const { topic, partitions } of committed) {
      const targets =
        target.kind === 'earliest'
          ? (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.low }))
          : await admin.fetchTopicOffsetsByTimestamp(topic, target.at.getTime());
      const to = new Map(targets.map((t) => [t.partition, t.offset]));
      plan.topics.push({
        topic,
        partitions: partitions.map((p) => ({
          partition: p.partition,
          from: p.offset,
          to: to.get(p.partition) ?? p.offset,
        })),
      });
      if (!dryRun) await admin.setOffsets({ groupId: group, topic, partitions: targets });
    }
    return plan;
  } finally {
    await admin.disconnect();
  }
}
