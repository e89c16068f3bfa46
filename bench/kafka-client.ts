/**
 * Kafka client benchmark: kafkajs and @platformatic/kafka side by side, through the client-neutral
 * interface (services/adapters/kafka/clients), in the same run, on the same topic layout.
 *
 * Rounds alternate the clients (kafkajs first in odd rounds, @platformatic/kafka first in even
 * ones) so that a change of machine load hits both alike. Each round and client, on a fresh
 * topic of BENCH_KAFKA_PARTITIONS partitions (default 6):
 *
 * - produce: BENCH_KAFKA_MESSAGES keyed messages (default 30,000) of BENCH_KAFKA_VALUE_BYTES
 *   (default 1,024) in sends of 200, one at a time, each awaited with acks=all (the embedder's
 *   slice of 200 through vecsync's producer);
 * - consume: one member of a new group reads them all from the beginning in batches of at most
 *   100 (the runner's slicing) with an explicit commit after every batch; the time runs from the
 *   first batch to the last commit (the join is reported apart);
 * - commit latency: every commit call of the consume phase (p50 / p99 over all rounds);
 * - resume after SIGKILL: two member processes (bench/kafka-member.ts) in one group, session
 *   6,000 ms and heartbeat 1,000 ms for both clients, while the parent keeps producing (30 keyed
 *   messages every 50 ms); one member is SIGKILLed, and the time runs from the kill until the
 *   survivor has committed a batch from every partition the killed member held.
 *
 * BENCH_KAFKA_ROUNDS rounds (default 3). Results go to bench/results/<date>-kafka.{json,md}.
 * Figures on a shared, loaded machine are indicative; the load average is recorded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONSUMER_SETTINGS } from '../services/adapters/kafka/client.ts';
import {
  CLIENT_NAMES,
  createClient,
  type ClientName,
  type KafkaClient,
} from '../services/adapters/kafka/clients/index.ts';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { loadConfig } from '../services/config/index.ts';
import { percentile } from '../services/domain/percentile.ts';
import { codeVersion } from './code-version.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, 'results');
const MEMBER = path.join(HERE, 'kafka-member.ts');

const ROUNDS = Number(process.env.BENCH_KAFKA_ROUNDS ?? 3);
const MESSAGES = Number(process.env.BENCH_KAFKA_MESSAGES ?? 30_000);
const VALUE_BYTES = Number(process.env.BENCH_KAFKA_VALUE_BYTES ?? 1024);
const PARTITIONS = Number(process.env.BENCH_KAFKA_PARTITIONS ?? 6);
const PRODUCE_BATCH = 200;
const CONSUME_MAX_BATCH = 100;
const FAILOVER = { sessionTimeout: 6_000, heartbeatInterval: 1_000, tickMs: 50, perTick: 30 } as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);
const load = () => os.loadavg().map((l) => Number(l.toFixed(2)));

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface ThroughputRound {
  round: number;
  client: ClientName;
  produce: { seconds: number; messagesPerSecond: number; mbPerSecond: number };
  consume: { joinSeconds: number; seconds: number; messagesPerSecond: number; mbPerSecond: number; commits: number };
  commitMs: number[];
  load: number[];
}

interface ResumeRound {
  round: number;
  client: ClientName;
  /** Kill → the survivor's first committed batch of a partition the killed member held. */
  firstMs: number;
  /** Kill → the survivor has committed a batch of every partition the killed member held. */
  allMs: number;
  killedPartitions: number[];
  load: number[];
}

/** Produce and consume throughput and commit latency of one client on a fresh topic. */
async function throughputRound(
  client: KafkaClient,
  round: number,
  run: string,
  values: Buffer[],
): Promise<ThroughputRound> {
  const topic = `${run}-tp-r${round}-${client.name}`;
  await client.createTopic(topic, PARTITIONS);
  try {
    const producer = await client.createProducer();
    const produceStart = performance.now();
    for (let i = 0; i < MESSAGES; i += PRODUCE_BATCH) {
      const batch = [];
      for (let j = i; j < Math.min(MESSAGES, i + PRODUCE_BATCH); j++)
        batch.push({ key: `key-${j}`, value: values[j]! });
      await producer.send(topic, batch);
    }
    const produceSeconds = (performance.now() - produceStart) / 1000;
    await producer.close();

    const commitMs: number[] = [];
    let consumed = 0;
    let firstAt: number | undefined;
    let lastCommitAt = 0;
    const member = client.createMember({
      groupId: `${topic}-group`,
      topics: [topic],
      fromBeginning: true,
      maxBatch: CONSUME_MAX_BATCH,
      handler: async (batch) => {
        firstAt ??= performance.now();
        consumed += batch.messages.length;
      },
      onCommit: (c) => {
        commitMs.push(c.ms);
        lastCommitAt = performance.now();
      },
    });
    const joinStart = performance.now();
    await member.start();
    await until(
      `${client.name} to consume ${MESSAGES} messages`,
      () => consumed >= MESSAGES && commitMs.length > 0,
      300_000,
    );
    // The last batch's commit follows its handler.
    await until('the last commit', () => lastCommitAt >= (firstAt ?? 0) && consumed >= MESSAGES);
    await sleep(200);
    await member.leave();
    const consumeSeconds = (lastCommitAt - firstAt!) / 1000;
    const mb = (MESSAGES * VALUE_BYTES) / 1e6;
    return {
      round,
      client: client.name as ClientName,
      produce: {
        seconds: produceSeconds,
        messagesPerSecond: MESSAGES / produceSeconds,
        mbPerSecond: mb / produceSeconds,
      },
      consume: {
        joinSeconds: (firstAt! - joinStart) / 1000,
        seconds: consumeSeconds,
        messagesPerSecond: consumed / consumeSeconds,
        mbPerSecond: mb / consumeSeconds,
        commits: commitMs.length,
      },
      commitMs,
      load: load(),
    };
  } finally {
    await client.deleteTopics([topic]).catch(() => undefined);
  }
}

interface MemberProcess {
  child: ChildProcess;
  partitions: number[];
  /** Committed batches: partition and the member's wall-clock time. */
  batches: { partition: number; t: number }[];
  stderr: string[];
  exited: Promise<void>;
}

function spawnMember(name: ClientName, groupId: string, topic: string): MemberProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MEMBER,
      name,
      groupId,
      topic,
      String(FAILOVER.sessionTimeout),
      String(FAILOVER.heartbeatInterval),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const m: MemberProcess = {
    child,
    partitions: [],
    batches: [],
    stderr: [],
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
  let rest = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const event = JSON.parse(line) as { ev: string; partitions?: number[]; partition?: number; t: number };
      if (event.ev === 'assigned') m.partitions = event.partitions!;
      if (event.ev === 'batch') m.batches.push({ partition: event.partition!, t: event.t });
    }
  });
  child.stderr!.on('data', (d: Buffer) => m.stderr.push(d.toString()));
  return m;
}

/** Two member processes, a producer that keeps writing, one member SIGKILLed: time to resume. */
async function resumeRound(client: KafkaClient, round: number, run: string): Promise<ResumeRound> {
  const name = client.name as ClientName;
  const topic = `${run}-kill-r${round}-${name}`;
  const groupId = `${topic}-group`;
  await client.createTopic(topic, PARTITIONS);
  const producer = await client.createProducer();
  let producing = true;
  let sent = 0;
  const value = Buffer.alloc(VALUE_BYTES, 'x');
  const writer = (async () => {
    while (producing) {
      const batch = Array.from({ length: FAILOVER.perTick }, () => ({ key: `key-${sent++}`, value }));
      await producer.send(topic, batch);
      await sleep(FAILOVER.tickMs);
    }
  })();
  const members = [spawnMember(name, groupId, topic), spawnMember(name, groupId, topic)];
  try {
    // Stable: both hold partitions, together all of them, and both have committed since.
    await until(
      'two members with disjoint partitions, both committing',
      () => {
        const [a, b] = members as [MemberProcess, MemberProcess];
        const all = new Set([...a.partitions, ...b.partitions]);
        return (
          a.partitions.length > 0 &&
          b.partitions.length > 0 &&
          all.size === PARTITIONS &&
          a.partitions.length + b.partitions.length === PARTITIONS &&
          members.every((m) => m.partitions.every((p) => m.batches.some((x) => x.partition === p)))
        );
      },
      120_000,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${members.map((m) => m.stderr.join('')).join('\n---\n')}`);
    });
    await sleep(2_000);
    const [victim, survivor] = members as [MemberProcess, MemberProcess];
    const killedPartitions = [...victim.partitions];
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const firstBy = new Map<number, number>();
    await until(
      `${name}: the survivor to commit on partitions ${killedPartitions.join(',')}`,
      () => {
        for (const b of survivor.batches)
          if (b.t >= killedAt && killedPartitions.includes(b.partition) && !firstBy.has(b.partition))
            firstBy.set(b.partition, b.t);
        return firstBy.size === killedPartitions.length;
      },
      90_000,
    );
    const times = [...firstBy.values()].map((t) => t - killedAt);
    return {
      round,
      client: name,
      firstMs: Math.min(...times),
      allMs: Math.max(...times),
      killedPartitions,
      load: load(),
    };
  } finally {
    producing = false;
    await writer.catch(() => undefined);
    await producer.close().catch(() => undefined);
    for (const m of members) {
      if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM');
    }
    await Promise.race([Promise.all(members.map((m) => m.exited)), sleep(15_000)]);
    for (const m of members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    await client.deleteTopics([topic]).catch(() => undefined);
  }
}

const summary = (values: number[]) => ({
  median: percentile(values, 50),
  min: Math.min(...values),
  max: Math.max(...values),
});

export async function runKafkaClientBench(): Promise<void> {
  const config = loadConfig();
  const run = `kcbench-${randomBytes(4).toString('hex')}`;
  const log = createLogger('warn', 'bench-kafka');
  const clients = Object.fromEntries(
    CLIENT_NAMES.map((n) => [n, createClient(n, { brokers: config.kafkaBrokers, clientId: `${run}-${n}`, log })]),
  ) as Record<ClientName, KafkaClient>;
  const values = Array.from({ length: MESSAGES }, () => randomBytes(VALUE_BYTES));
  const loadBefore = load();
  const startedAt = Date.now();
  say(
    `run ${run}: ${MESSAGES} messages of ${VALUE_BYTES} B, ${PARTITIONS} partitions, ${ROUNDS} rounds; ` +
      `node ${process.version}; ${CLIENT_NAMES.map((n) => `${n} ${clients[n].version}`).join(', ')}; load ${loadBefore.join(' ')}`,
  );
  const throughput: ThroughputRound[] = [];
  const resume: ResumeRound[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? CLIENT_NAMES : [...CLIENT_NAMES].reverse();
      for (const name of order) {
        const r = await throughputRound(clients[name], round, run, values);
        throughput.push(r);
        say(
          `round ${round} ${name}: produce ${r.produce.messagesPerSecond.toFixed(0)} msg/s (${r.produce.mbPerSecond.toFixed(1)} MB/s); ` +
            `consume ${r.consume.messagesPerSecond.toFixed(0)} msg/s (${r.consume.mbPerSecond.toFixed(1)} MB/s, join ${r.consume.joinSeconds.toFixed(2)} s, ${r.consume.commits} commits); ` +
            `commit p50 ${percentile(r.commitMs, 50).toFixed(2)} ms p99 ${percentile(r.commitMs, 99).toFixed(2)} ms; load ${r.load.join(' ')}`,
        );
      }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? CLIENT_NAMES : [...CLIENT_NAMES].reverse();
      for (const name of order) {
        const r = await resumeRound(clients[name], round, run);
        resume.push(r);
        say(
          `resume round ${round} ${name}: SIGKILL → first of the killed partitions ${(r.firstMs / 1000).toFixed(2)} s, all ${r.killedPartitions.length} ${(r.allMs / 1000).toFixed(2)} s; load ${r.load.join(' ')}`,
        );
      }
    }
  } finally {
    for (const c of Object.values(clients)) await c.close().catch(() => undefined);
  }
  const loadAfter = load();

  const per = (name: ClientName) => {
    const t = throughput.filter((r) => r.client === name);
    const k = resume.filter((r) => r.client === name);
    const commits = t.flatMap((r) => r.commitMs);
    return {
      version: clients[name].version,
      produceMessagesPerSecond: summary(t.map((r) => r.produce.messagesPerSecond)),
      produceMbPerSecond: summary(t.map((r) => r.produce.mbPerSecond)),
      consumeMessagesPerSecond: summary(t.map((r) => r.consume.messagesPerSecond)),
      consumeMbPerSecond: summary(t.map((r) => r.consume.mbPerSecond)),
      joinSeconds: summary(t.map((r) => r.consume.joinSeconds)),
      commitMs: {
        samples: commits.length,
        p50: percentile(commits, 50),
        p99: percentile(commits, 99),
        max: Math.max(...commits),
      },
      resumeAllMs: summary(k.map((r) => r.allMs)),
      resumeFirstMs: summary(k.map((r) => r.firstMs)),
    };
  };
  const result = {
    at: new Date(startedAt).toISOString(),
    conditions: {
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      code: await codeVersion(),
      brokers: config.kafkaBrokers,
      messages: MESSAGES,
      valueBytes: VALUE_BYTES,
      partitions: PARTITIONS,
      rounds: ROUNDS,
      produceBatch: PRODUCE_BATCH,
      consumeMaxBatch: CONSUME_MAX_BATCH,
      failover: FAILOVER,
      consumerDefaults: CONSUMER_SETTINGS,
      clients: Object.fromEntries(CLIENT_NAMES.map((n) => [n, clients[n].version])),
      loadBefore,
      loadAfter,
      benchSeconds: (Date.now() - startedAt) / 1000,
      note: 'shared 2-core machine; other work running; figures are indicative',
    },
    summary: Object.fromEntries(CLIENT_NAMES.map((n) => [n, per(n)])),
    throughput: throughput.map(({ commitMs, ...r }) => ({
      ...r,
      commitP50Ms: percentile(commitMs, 50),
      commitP99Ms: percentile(commitMs, 99),
    })),
    resume,
  };
  const stamp = result.at.replace(/[:T]/g, '-').slice(0, 19);
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, `${stamp}-kafka.json`), JSON.stringify(result, null, 2) + '\n');
  const f = (s: { median: number; min: number; max: number }, digits = 0, scale = 1) =>
    `${(s.median / scale).toFixed(digits)} (${(s.min / scale).toFixed(digits)}–${(s.max / scale).toFixed(digits)})`;
  const rows = CLIENT_NAMES.map((n) => {
    const s = result.summary[n]!;
    return [
      `| ${n} ${s.version}`,
      f(s.produceMessagesPerSecond),
      f(s.produceMbPerSecond, 1),
      f(s.consumeMessagesPerSecond),
      f(s.consumeMbPerSecond, 1),
      `${s.commitMs.p50.toFixed(2)} / ${s.commitMs.p99.toFixed(2)} (${s.commitMs.samples})`,
      f(s.resumeAllMs, 2, 1000),
      f(s.resumeFirstMs, 2, 1000),
      `${f(s.joinSeconds, 2)} |`,
    ].join(' | ');
  });
  const md = [
    `# Kafka clients side by side (${result.at})`,
    '',
    `Conditions: Node ${result.conditions.node}; ${result.conditions.cpus} × ${result.conditions.cpu}; code ${result.conditions.code}; ` +
      `local single-broker KRaft at ${config.kafkaBrokers.join(',')}; ${MESSAGES} messages of ${VALUE_BYTES} B random values per round and client, ` +
      `${PARTITIONS} partitions, a fresh topic each time; sends of ${PRODUCE_BATCH} awaited one at a time with acks=all; ` +
      `consume in batches of at most ${CONSUME_MAX_BATCH} with a commit after each; ${ROUNDS} rounds, the clients alternating. ` +
      `Resume: two member processes, session ${FAILOVER.sessionTimeout} ms, heartbeat ${FAILOVER.heartbeatInterval} ms, ` +
      `${FAILOVER.perTick} messages every ${FAILOVER.tickMs} ms while one member is SIGKILLed. ` +
      `Load average (1/5/15 min) before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')}; shared machine, figures indicative. ` +
      `Whole bench ${result.conditions.benchSeconds.toFixed(0)} s.`,
    '',
    'Median (range) over the rounds; commit latency over every commit of every round.',
    '',
    '| client | produce msg/s | produce MB/s | consume msg/s | consume MB/s | commit p50 / p99 ms (samples) | resume after SIGKILL, all killed partitions (s) | resume, first partition (s) | join (s) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '| round | client | produce msg/s | consume msg/s | commit p50 / p99 ms | load (1 min) |',
    '|---|---|---|---|---|---|',
    ...result.throughput.map(
      (r) =>
        `| ${r.round} | ${r.client} | ${r.produce.messagesPerSecond.toFixed(0)} | ${r.consume.messagesPerSecond.toFixed(0)} | ${r.commitP50Ms.toFixed(2)} / ${r.commitP99Ms.toFixed(2)} | ${r.load[0]} |`,
    ),
    '',
    '| round | client | killed partitions | resume, first (s) | resume, all (s) | load (1 min) |',
    '|---|---|---|---|---|---|',
    ...resume.map(
      (r) =>
        `| ${r.round} | ${r.client} | ${r.killedPartitions.join(',')} | ${(r.firstMs / 1000).toFixed(2)} | ${(r.allMs / 1000).toFixed(2)} | ${r.load[0]} |`,
    ),
    '',
  ].join('\n');
  await writeFile(path.join(RESULTS, `${stamp}-kafka.md`), md);
  say(`\n${md}\nwritten to bench/results/${stamp}-kafka.{json,md}`);
}
