/**
 * The Kafka clients behind the client-neutral interface (types.ts), by name. The client bench and
 * test/kafka-clients.test.ts run every entry; vecsync's runner and producer still use kafkajs
 * directly (client.ts, producer.ts, runner.ts).
 */
import { createKafkajsClient } from './kafkajs.ts';
import { createPlatformaticClient } from './platformatic.ts';
import type { ClientSettings, KafkaClient } from './types.ts';

export type * from './types.ts';

export const CLIENTS = {
  kafkajs: createKafkajsClient,
  platformatic: createPlatformaticClient,
} as const satisfies Record<string, (settings: ClientSettings) => KafkaClient>;

export type ClientName = keyof typeof CLIENTS;

export const CLIENT_NAMES = Object.keys(CLIENTS) as ClientName[];

export function isClientName(name: string): name is ClientName {
  return Object.hasOwn(CLIENTS, name);
}

export function createClient(name: ClientName, settings: ClientSettings): KafkaClient {
  return CLIENTS[name](settings);
}
