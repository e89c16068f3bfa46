/**
 * One consumer-group member for the Kafka client bench (bench/kafka-client.ts), as a process of its
 * own so that it can be SIGKILLed:
 *
 *   node --import tsx bench/kafka-member.ts <client> <groupId> <topic> <sessionMs> <heartbeatMs>
 *
 * Prints one JSON line per event on stdout: `assigned` (its partitions) and `batch` (a batch
 * handled and committed: partition, size, wall-clock time). SIGTERM leaves the group and exits.
 */
import { createClient, isClientName } from '../services/adapters/kafka/clients/index.ts';
import { createLogger } from '../services/adapters/telemetry/log.ts';
import { loadConfig } from '../services/config/index.ts';

const [name = '', groupId = '', topic = '', sessionMs = '6000', heartbeatMs = '1000'] = process.argv.slice(2);
if (!isClientName(name) || !groupId || !topic) {
  throw new Error('usage: kafka-member.ts <kafkajs|platformatic> <groupId> <topic> <sessionMs> <heartbeatMs>');
}
const say = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...event, t: Date.now() })}\n`);

const client = createClient(name, {
  brokers: loadConfig().kafkaBrokers,
  clientId: `${groupId}-${process.pid}`,
  log: createLogger('warn', 'kafka-member'),
});
const member = client.createMember({
  groupId,
  topics: [topic],
  fromBeginning: true,
  maxBatch: 100,
  sessionTimeout: Number(sessionMs),
  heartbeatInterval: Number(heartbeatMs),
  handler: async () => undefined,
  onAssignment: (assignment) =>
    say({ ev: 'assigned', partitions: assignment.find((a) => a.topic === topic)?.partitions ?? [] }),
  onCommit: (c) => say({ ev: 'batch', partition: c.partition, offset: c.offset }),
});
process.once('SIGTERM', () => {
  void member
    .leave()
    .then(() => client.close())
    .finally(() => process.exit(0));
});
await member.start();
say({ ev: 'started' });
await member.stopped.catch((error: unknown) => {
  process.stderr.write(`member stopped: ${String(error)}\n`);
  process.exit(1);
});
