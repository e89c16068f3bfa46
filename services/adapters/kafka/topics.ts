/** Topic names, derived in one place from the topic prefix. */
export const LANES = ['priority', 'live', 'bulk'] as const;
export type Lane = (typeof LANES)[number];

export const SERVICES = ['embedder', 'writer', 'propagator', 'reconciler'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface Topics {
  lane(lane: Lane): string;
  /** Compacted latest state of each document (restricted fields excluded). */
  state: string;
  /** Avro chunk records of one embedding model (`modelKey` from config, e.g. `hashing-384.v1`). */
  chunks(modelKey: string): string;
  /** Dead letters of one service. */
  dlq(service: ServiceName): string;
  /** Debezium's heartbeat topic (`topic.heartbeat.prefix` default). */
  heartbeat: string;
}

export function topicsFor(prefix: string): Topics {
  return {
    lane: (lane) => `${prefix}.outbox.${lane}`,
    state: `${prefix}.state.documents`,
    chunks: (modelKey) => `${prefix}.chunks.${modelKey}`,
    dlq: (service) => `${prefix}.dlq.${service}`,
    heartbeat: `__debezium-heartbeat.${prefix}`,
  };
}
