import { CompressionTypes, type Producer as KafkaProducer } from 'kafkajs';
import { RetriableError } from '../core/errors.ts';
import type { Kafka } from './client.ts';
import type { OutMessage } from './message.ts';

/** An idempotent producer that resolves only when every message is acknowledged by all replicas. */
export interface Producer {
  send(topic: string, messages: OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

export async function createProducer(kafka: Kafka): Promise<Producer> {
  const producer: KafkaProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
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
