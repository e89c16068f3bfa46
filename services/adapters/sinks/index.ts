/**
 * The sink registry. A new sink is one folder and one line here; the folder name, the registry key
 * and the config type (`VECSYNC_SINK`) are the same word.
 */
import { ConfigError } from '../../domain/errors.ts';
import type { Logger } from '../telemetry/log.ts';
import type { PgvectorRootConfig } from './pgvector/config.ts';
import type { PineconeRootConfig } from './pinecone/config.ts';
import type { Sink } from './types.ts';

export type * from './types.ts';

/**
 * What the factories read from the root configuration (`loadConfig()` satisfies it). Declared here
 * rather than imported, so sinks do not depend on the config module above them; a new sink adds
 * the fields it reads.
 */
export interface SinkRootConfig {
  /** VECSYNC_SINK, VECSYNC_SINK_NAME, and each sink's section (the Pinecone one only its sink needs). */
  sink: PgvectorRootConfig['sink'] & PineconeRootConfig['sink'] & { type: string };

  /** VECSYNC_EMBEDDING_MODEL / VECSYNC_EMBEDDING_VERSION: the model VECSYNC_PINECONE_INDEX/HOST name by default. */
  embedder?: { model: string; version: number };
  /** VECSYNC_MAX_CHUNKS: a delete removes ids #0..#maxChunks-1 without listing first. */
  limits?: { maxChunks: number };
  /** VECSYNC_RETRY_*: the Pinecone sink's request-level retries. */
  retry?: { maxAttempts: number; initialMs: number; maxMs: number };
}

export interface SinkFactoryOptions {
  log?: Logger;
}

export type SinkFactory = (config: SinkRootConfig, options?: SinkFactoryOptions) => Sink;

/**
 * Each sink's module is loaded when it is created, so a process on pgvector never loads the
 * Pinecone SDK (and a CLI command starts faster).
 */
export const sinks = {
  pgvector: async () => (await import('./pgvector/sink.ts')).createPgvectorSink,
  pinecone: async () => (await import('./pinecone/sink.ts')).createPineconeSink,
} as const satisfies Record<string, () => Promise<SinkFactory>>;

export type SinkType = keyof typeof sinks;

/** The sink named by `VECSYNC_SINK`, configured from the root configuration. */
export async function createSink(config: SinkRootConfig, options: SinkFactoryOptions = {}): Promise<Sink> {
  const type = config.sink.type;
  if (!Object.hasOwn(sinks, type)) {
    throw new ConfigError(
      `invalid VECSYNC_SINK=${JSON.stringify(type)}: no such sink (known: ${Object.keys(sinks).join(', ')})`,
    );
  }
  return (await sinks[type as SinkType]())(config, options);
}
