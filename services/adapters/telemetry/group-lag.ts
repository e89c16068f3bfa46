/**
 * Consumer-group lag measured from the broker (committed offsets against high watermarks), at
 * scrape time, by a process other than the consumer.
 *
 * `vecsync_consumer_lag` is set by each consumer for its own partitions, so it disappears with the
 * consumer: a stopped writer exports nothing. This gauge is exported by a process that stays up
 * (the reconciler), so the lag of a stopped or stuck group keeps growing where alerts can see it.
 */
import client from 'prom-client';
import { registry as defaultRegistry } from './metrics.ts';

/** The part of a connected kafkajs Admin this module uses. */
export interface LagAdmin {
  listGroups(): Promise<{ groups: { groupId: string }[] }>;
  fetchOffsets(options: {
    groupId: string;
  }): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
}

export interface GroupLagOptions {
  /** Measure the groups named `<groupPrefix>.…` (VECSYNC_GROUP_PREFIX). */
  groupPrefix: string;
  registry?: client.Registry;
  /** Scrapes closer together than this reuse the previous reading. */
  minIntervalMs?: number;
}

/** Per (group, topic): messages behind, and the sum of committed offsets (it moves while the group makes progress). */
export interface GroupPosition {
  group: string;
  topic: string;
  lag: number;
  committed: number;
}

export interface GroupLagGauge {
  /** Positions of the groups, read now (what a scrape does). */
  read(): Promise<GroupPosition[]>;
  unregister(): void;
}

export const GROUP_LAG_NAMES = [
  'vecsync_consumer_group_lag',
  'vecsync_consumer_group_committed_offset',
  'vecsync_consumer_group_lag_errors_total',
] as const;

/** Per (group, topic): high watermark minus committed offset, and committed offsets, summed over partitions. */
export async function groupPositions(admin: LagAdmin, groupPrefix: string): Promise<GroupPosition[]> {
  const out: GroupPosition[] = [];
  const { groups } = await admin.listGroups();
  const ends = new Map<string, Map<number, { high: number; low: number }>>();
  for (const { groupId } of groups.filter((g) => g.groupId.startsWith(`${groupPrefix}.`))) {
    for (const { topic, partitions } of await admin.fetchOffsets({ groupId })) {
      let byPartition = ends.get(topic);
      if (!byPartition) {
        const offsets = await admin.fetchTopicOffsets(topic).catch(() => undefined);
        if (!offsets) continue; // the topic was deleted; the group's stale offsets say nothing
        byPartition = new Map(offsets.map((p) => [p.partition, { high: Number(p.high), low: Number(p.low) }]));
        ends.set(topic, byPartition);
      }
      let lag = 0;
      let committed = 0;
      for (const p of partitions) {
        const end = byPartition.get(p.partition);
        if (!end) continue;
        // No committed offset (-1): the group would start from the earliest retained message.
        const from = Number(p.offset) >= 0 ? Number(p.offset) : end.low;
        lag += Math.max(0, end.high - from);
        committed += Math.max(0, Number(p.offset));
      }
      out.push({ group: groupId, topic, lag, committed });
    }
  }
  return out;
}

export function registerGroupLagGauge(admin: LagAdmin, options: GroupLagOptions): GroupLagGauge {
  const registers = [options.registry ?? defaultRegistry];
  const minIntervalMs = options.minIntervalMs ?? 500;
  let last: { at: number; positions: Promise<GroupPosition[] | undefined> } | undefined;
  const errors = new client.Counter({
    name: 'vecsync_consumer_group_lag_errors_total',
    help: 'Group-lag readings from the broker that failed; vecsync_consumer_group_lag is absent until one succeeds.',
    registers,
  });
  const current = (): Promise<GroupPosition[] | undefined> => {
    const now = Date.now();
    if (!last || now - last.at >= minIntervalMs)
      last = {
        at: now,
        positions: groupPositions(admin, options.groupPrefix).catch(() => {
          errors.inc();
          return undefined;
        }),
      };
    return last.positions;
  };
  const gauge = (name: string, help: string, value: (p: GroupPosition) => number) => {
    const g: client.Gauge<'group' | 'topic'> = new client.Gauge({
      name,
      help,
      labelNames: ['group', 'topic'] as const,
      registers,
      async collect() {
        const positions = await current();
        g.reset();
        for (const p of positions ?? []) g.set({ group: p.group, topic: p.topic }, value(p));
      },
    });
  };
  gauge(
    'vecsync_consumer_group_lag',
    'Messages behind per consumer group and topic, from committed offsets (measured outside the consumer).',
    (p) => p.lag,
  );
  gauge(
    'vecsync_consumer_group_committed_offset',
    'Sum of the committed offsets of a consumer group on a topic; it stops moving when the group makes no progress.',
    (p) => p.committed,
  );
  return {
    async read() {
      last = undefined;
      return (await current()) ?? [];
    },
    unregister() {
      for (const reg of registers) for (const name of GROUP_LAG_NAMES) reg.removeSingleMetric(name);
    },
  };
}
