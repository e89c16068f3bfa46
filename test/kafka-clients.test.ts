/**
 * Both Kafka clients through the client-neutral interface (services/adapters/kafka/clients),
 * against the stack's real broker. Per client, on a topic and group of its own: produce keyed
 * messages with acks=all, consume all of them in a group with a commit after every batch, a second
 * member joins and gets partitions, and the committed offsets are exactly what was processed (read
 * back through both clients). Without a stack the tests skip loudly, and fail under CI
 * (`stackOrSkip`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  CLIENT_NAMES,
  createClient,
  type ClientName,
  type GroupMember,
  type KafkaClient,
} from '../services/adapters/kafka/clients/index.ts';
import type { InMessage } from '../services/adapters/kafka/message.ts';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { stackOrSkip } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const PARTITIONS = 6;
const PER_ROUND = 300;
const log = createLogger('warn', 'kafka-clients-test');

describe('Kafka clients through the client-neutral interface', () => {
  for (const name of CLIENT_NAMES) {
    it(`${name}: produce, consume in a group with commits, a second member takes partitions, offsets match`, async (t) => {
      const stack = await stackOrSkip(t);
      if (!stack) return;
      const run = `kcbench-${randomBytes(4).toString('hex')}-test-${name}`;
      const topic = run;
      const groupId = `${run}-group`;
      const clients = Object.fromEntries(
        CLIENT_NAMES.map((n) => [n, createClient(n, { brokers: stack.kafkaBrokers, clientId: `${run}-${n}`, log })]),
      ) as Record<ClientName, KafkaClient>;
      const client = clients[name];
      const members: GroupMember[] = [];
      try {
        await client.createTopic(topic, PARTITIONS);
        const producer = await client.createProducer();
        const produce = async (round: number) => {
          for (let i = 0; i < PER_ROUND; i += 50) {
            const batch = Array.from({ length: 50 }, (_, j) => ({
              key: `doc-${i + j}`,
              value: `round ${round} message ${i + j}`,
              headers: { round: String(round) },
            }));
            await producer.send(topic, batch);
          }
        };
        await produce(1);

        /** Per member, what it handled, and its latest assignment. */
        const handled: InMessage[][] = [[], []];
        const assigned: number[][] = [[], []];
        const commits: number[] = [0, 0];
        const join = async (i: number) => {
          const member = client.createMember({
            groupId,
            topics: [topic],
            fromBeginning: true,
            maxBatch: 20,
            handler: async (batch) => {
              assert.ok(batch.messages.every((m) => m.partition === batch.partition && m.topic === topic));
              handled[i]!.push(...batch.messages);
            },
            onAssignment: (assignment) => (assigned[i] = assignment.find((a) => a.topic === topic)?.partitions ?? []),
            onCommit: () => commits[i]!++,
          });
          members.push(member);
          await member.start();
        };
        // By key and round, not by offset: a produce retried after a partial failure may write a
        // batch twice (at least once), which @platformatic/kafka does on a just-created topic.
        const keysOf = (round: string) =>
          new Set([...handled[0]!, ...handled[1]!].filter((m) => m.headers.round === round).map((m) => m.key));

        await join(0);
        await waitFor(() => keysOf('1').size === PER_ROUND, {
          timeoutMs: 60_000,
          description: `member 1 to handle ${PER_ROUND} messages`,
        });
        assert.deepEqual(assigned[0], [0, 1, 2, 3, 4, 5]);
        assert.ok(commits[0]! >= PARTITIONS, `a commit per batch (${commits[0]} commits)`);
        const first = handled[0]!.filter((m) => m.headers.round === '1');
        assert.deepEqual(
          new Set(first.map((m) => m.key)),
          new Set(Array.from({ length: PER_ROUND }, (_, i) => `doc-${i}`)),
        );

        await join(1);
        await waitFor(
          () => {
            const [a, b] = assigned;
            return (
              a!.length > 0 &&
              b!.length > 0 &&
              a!.every((p) => !b!.includes(p)) &&
              new Set([...a!, ...b!]).size === PARTITIONS
            );
          },
          { timeoutMs: 60_000, description: 'the second member to get partitions, the two assignments disjoint' },
        );
        await produce(2);
        await waitFor(() => keysOf('2').size === PER_ROUND, {
          timeoutMs: 60_000,
          description: `both members to handle ${2 * PER_ROUND} messages`,
        });
        const second = handled[1]!.filter((m) => m.headers.round === '2');
        assert.ok(second.length > 0, 'the second member handled messages of round 2');
        assert.ok(
          second.every((m) => assigned[1]!.includes(m.partition)),
          "the second member handled only its partitions' messages",
        );
        // A key goes to one partition, whichever round wrote it.
        const partitionOf = new Map(first.map((m) => [m.key, m.partition]));
        for (const m of [...handled[0]!, ...handled[1]!]) assert.equal(m.partition, partitionOf.get(m.key!), m.key!);

        /** Per partition, the offset after the last message handled, once every offset before it was handled. */
        const contiguous = () => {
          const offsets = new Map<number, Set<bigint>>();
          for (const m of [...handled[0]!, ...handled[1]!]) {
            if (!offsets.has(m.partition)) offsets.set(m.partition, new Set());
            offsets.get(m.partition)!.add(BigInt(m.offset));
          }
          const ends = new Map<number, string>();
          for (const [partition, set] of offsets) {
            const end = [...set].reduce((a, b) => (b > a ? b : a), -1n) + 1n;
            if (BigInt(set.size) !== end) return undefined;
            ends.set(partition, end.toString());
          }
          return ends.size === PARTITIONS ? ends : undefined;
        };
        // Duplicates written after a partition's last new key may still be on their way.
        const settled = await waitFor(
          async () => {
            const expected = contiguous();
            if (!expected) return undefined;
            const committed = await client.committedOffsets(groupId, topic);
            return [...expected].every(([p, o]) => committed.get(p) === o) && committed.size === PARTITIONS
              ? expected
              : undefined;
          },
          { timeoutMs: 30_000, description: 'the committed offsets to reach the last message handled' },
        );
        for (const member of members.splice(0)) await member.leave();
        await producer.close();

        // Every partition got messages, every offset up to its end was handled, and the group
        // stands right after the last one, as either client reads it.
        assert.ok([...settled.values()].reduce((sum, o) => sum + Number(o), 0) >= 2 * PER_ROUND);
        for (const reader of CLIENT_NAMES) {
          const committed = await clients[reader].committedOffsets(groupId, topic);
          assert.deepEqual(
            new Map([...committed].sort(([a], [b]) => a - b)),
            new Map([...settled].sort(([a], [b]) => a - b)),
            `committed offsets read by ${reader}`,
          );
        }
      } finally {
        for (const member of members) await member.leave().catch(() => undefined);
        await client.deleteTopics([topic]).catch(() => undefined);
        for (const c of Object.values(clients)) await c.close().catch(() => undefined);
      }
    });
  }
});
