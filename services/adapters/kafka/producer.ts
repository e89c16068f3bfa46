import { CompressionTypes, Partitioners, type Producer as KafkaProducer } from 'kafkajs';
import { RetriableError } from '../../domain/errors.ts';
import type { Kafka } from './client.ts';
import type { OutMessage } from './message.ts';

/** An idempotent producer that resolves only when every message is acknowledged by all replicas. */
export interface Producer {
  send(topic: string, messages: OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

export async function createProducer(kafka: Kafka): Promise<Producer> {
  // Not kafkajs' idempotent mode: it wants unbounded retries, and a send must fail (retriably)
  // during a broker outage so the runner can back off. One request in flight keeps per-key order;
  // a duplicate after a retried send is harmless because the ledger makes every apply idempotent.
  const producer: KafkaProducer = kafka.producer({
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // The Java client's murmur2 partitioning, as Debezium uses: one key, one partition everywhere.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return {
    async send(topic, messages) {
      if (messages.length === 0) return;
      try {
        await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.None,
          messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
        });
      } catch (error) {
        throw new RetriableError(`producing to ${topic} failed: ${(error as Error).message}`, { cause: error });
      }
    },
    close: () => producer.disconnect(),
  };
}
