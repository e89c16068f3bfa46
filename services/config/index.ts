/**
 * The one validated configuration schema. It is read once at start-up (`loadConfig`), fails fast
 * with the name of the bad variable, and no other module reads `process.env` for settings.
 *
 * The schema is one tree of declared settings (services/domain/settings.ts); each sink and
 * embedding provider declares its own section beside its code, and `Config` is the type inferred
 * from the tree. Each setting's `doc` is the user documentation; the README's table is generated
 * by `vecsync config --markdown`.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { MINILM_SETTINGS } from '../adapters/embedding/minilm/config.ts';
import { OPENAI_SETTINGS } from '../adapters/embedding/openai/config.ts';
import { PGVECTOR_SETTINGS } from '../adapters/sinks/pgvector/config.ts';
import { PINECONE_SETTINGS } from '../adapters/sinks/pinecone/config.ts';
import { ConfigError, registerSecret } from '../domain/errors.ts';
import { describeSettings, listSettings, setting, settle, type Settled } from '../domain/settings.ts';
import type { StackSettings } from '../stack/types.ts';

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const prefix = z.string().regex(/^[A-Za-z0-9._-]+$/);

/** Every setting vecsync reads, declared once, in the shape of `Config`. */
export const CONFIG_SCHEMA = {
  ports: {
    pg: setting({
      env: 'VECSYNC_PG_PORT',
      schema: port,
      default: '55432',
      doc: 'Port of the local stack PostgreSQL cluster.',
    }),
    kafka: setting({
      env: 'VECSYNC_KAFKA_PORT',
      schema: port,
      default: '19092',
      doc: 'Port of the local stack Kafka broker.',
    }),
    kafkaController: setting({
      env: 'VECSYNC_KAFKA_CONTROLLER_PORT',
      schema: port,
      default: '19093',
      doc: 'Port of the local stack KRaft controller listener.',
    }),
    registry: setting({
      env: 'VECSYNC_REGISTRY_PORT',
      schema: port,
      default: '18081',
      doc: 'Port of the local stack Apicurio Registry.',
    }),
    connect: setting({
      env: 'VECSYNC_CONNECT_PORT',
      schema: port,
      default: '18083',
      doc: 'Port of the local stack Kafka Connect REST API.',
    }),
  },
  stackHome: setting({
    env: 'VECSYNC_STACK_HOME',
    schema: z.string().min(1),
    default: () => path.join(os.homedir(), '.cache', 'vecsync-stack'),
    doc: 'Where the local stack keeps downloads, builds, data, logs and pid files.',
  }),
  sourceUrl: setting({
    env: 'VECSYNC_SOURCE_URL',
    schema: z.string().url(),
    default: (s) => `postgres://postgres@127.0.0.1:${s.VECSYNC_PG_PORT}/vecsync`,
    doc: 'Source-of-truth PostgreSQL (documents, ACLs, outbox, ledger).',
  }),
  kafkaBrokers: setting({
    env: 'VECSYNC_KAFKA_BROKERS',
    schema: csv.pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1)),
    default: (s) => `127.0.0.1:${s.VECSYNC_KAFKA_PORT}`,
    doc: 'Comma-separated Kafka bootstrap brokers (host:port).',
  }),
  schemaRegistryUrl: setting({
    env: 'VECSYNC_SCHEMA_REGISTRY_URL',
    schema: z.string().url(),
    default: (s) => `http://127.0.0.1:${s.VECSYNC_REGISTRY_PORT}/apis/ccompat/v7`,
    doc: 'Confluent-compatible schema registry base URL (Apicurio: /apis/ccompat/v7).',
  }),
  connectUrl: setting({
    env: 'VECSYNC_CONNECT_URL',
    schema: z.string().url(),
    default: (s) => `http://127.0.0.1:${s.VECSYNC_CONNECT_PORT}`,
    doc: 'Kafka Connect REST API.',
  }),
  sink: {
    type: setting({
      env: 'VECSYNC_SINK',
      schema: z.enum(['pgvector', 'pinecone']),
      default: 'pgvector',
      doc: 'Vector store type.',
    }),
    name: setting({
      env: 'VECSYNC_SINK_NAME',
      schema: z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lowercase letters, digits, _; max 31'),
      default: 'main',
      doc: "Name of this pipeline's sink instance; several sinks can be fed from the same topics, each with its own name, consumer groups and ledger rows.",
    }),
    pgvector: PGVECTOR_SETTINGS,
    pinecone: PINECONE_SETTINGS,
  },
  groupPrefix: setting({
    env: 'VECSYNC_GROUP_PREFIX',
    schema: prefix,
    default: 'vecsync',
    doc: 'Consumer groups are `<prefix>.<sink name>.<service>`; per-model services add the model key: `<prefix>.embedder.<model key>.<lane>`, `<prefix>.<sink name>.writer.<model key>`.',
  }),
  topicPrefix: setting({
    env: 'VECSYNC_TOPIC_PREFIX',
    schema: prefix,
    default: 'vecsync',
    doc: 'Prefix of every topic (`<prefix>.outbox.<lane>`, `<prefix>.chunks.<model>`, ...).',
  }),
  embedder: {
    type: setting({
      env: 'VECSYNC_EMBEDDER',
      schema: z.enum(['hashing', 'minilm', 'openai']),
      default: 'minilm',
      doc: 'Embedding provider: `minilm` (all-MiniLM-L6-v2 in-process, 384 dimensions), `hashing` (fast, lexical; tests and benchmarks), `openai` (any OpenAI-compatible endpoint).',
    }),
    dimensions: setting({
      env: 'VECSYNC_EMBEDDING_DIMENSIONS',
      schema: positiveInt,
      default: '384',
      doc: 'Vector dimensions of the active model.',
    }),
    model: setting({
      env: 'VECSYNC_EMBEDDING_MODEL',
      schema: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
      default: (s) => `${s.VECSYNC_EMBEDDER}-${s.VECSYNC_EMBEDDING_DIMENSIONS}`,
      doc: 'Name of the active embedding model, as registered in vecsync.embedding_models (default `<VECSYNC_EMBEDDER>-<VECSYNC_EMBEDDING_DIMENSIONS>`: `minilm-384`, `hashing-384`).',
    }),
    version: setting({
      env: 'VECSYNC_EMBEDDING_VERSION',
      schema: positiveInt,
      default: '1',
      doc: 'Version of the active embedding model.',
    }),
    batchSize: setting({
      env: 'VECSYNC_EMBED_BATCH_SIZE',
      schema: positiveInt,
      default: '64',
      doc: 'Texts per embedding call.',
    }),
    timeoutMs: setting({
      env: 'VECSYNC_EMBED_TIMEOUT_MS',
      schema: positiveInt,
      default: '30000',
      doc: 'Timeout of one embedding request.',
    }),
    breakerResetMs: setting({
      env: 'VECSYNC_EMBED_BREAKER_RESET_MS',
      schema: positiveInt,
      default: '10000',
      doc: 'After repeated provider failures the embedding circuit opens; one probe is let through after this long.',
    }),
    openai: OPENAI_SETTINGS,
    minilm: MINILM_SETTINGS,
  },
  chunking: {
    size: setting({
      env: 'VECSYNC_CHUNK_SIZE',
      schema: positiveInt,
      default: '800',
      doc: 'Target chunk size in characters.',
    }),
    overlap: setting({
      env: 'VECSYNC_CHUNK_OVERLAP',
      schema: nonNegativeInt,
      default: '100',
      doc: 'Chunk overlap in characters.',
    }),
  },
  metadataAllowlist: setting({
    env: 'VECSYNC_METADATA_ALLOWLIST',
    schema: csv.pipe(z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/))),
    default: 'category,source,lang,tags',
    doc: 'Metadata keys that may leave PostgreSQL; every other key is dropped by the outbox trigger.',
  }),
  limits: {
    maxBodyBytes: setting({
      env: 'VECSYNC_MAX_BODY_BYTES',
      schema: positiveInt,
      default: '16777216',
      doc: 'Largest document body embedded; a larger one is dead-lettered (body_too_large) and leaves search.',
    }),
    maxChunks: setting({
      env: 'VECSYNC_MAX_CHUNKS',
      schema: positiveInt,
      default: '32768',
      doc: 'Most chunks per document.',
    }),
    maxMetadataBytes: setting({
      env: 'VECSYNC_MAX_METADATA_BYTES',
      schema: positiveInt,
      default: '16384',
      doc: 'Largest allowlisted metadata (JSON bytes).',
    }),
  },
  retry: {
    maxAttempts: setting({
      env: 'VECSYNC_RETRY_MAX_ATTEMPTS',
      schema: positiveInt,
      default: '6',
      doc: 'Attempts before a message is dead-lettered.',
    }),
    initialMs: setting({
      env: 'VECSYNC_RETRY_INITIAL_MS',
      schema: positiveInt,
      default: '200',
      doc: 'First retry delay; doubles with jitter.',
    }),
    maxMs: setting({ env: 'VECSYNC_RETRY_MAX_MS', schema: positiveInt, default: '30000', doc: 'Largest retry delay.' }),
  },
  reconcile: {
    intervalMs: setting({
      env: 'VECSYNC_RECONCILE_INTERVAL_MS',
      schema: positiveInt,
      default: '600000',
      doc: '`vecsync run reconciler`: time between the start of one reconcile pass and the next.',
    }),
    settleMs: setting({
      env: 'VECSYNC_RECONCILE_SETTLE_MS',
      schema: nonNegativeInt,
      default: '60000',
      doc: 'Documents changed within this window are in flight, not drift (reconciler and `vecsync reconcile`).',
    }),
    repair: setting({
      env: 'VECSYNC_RECONCILE_REPAIR',
      schema: bool,
      default: 'false',
      doc: '`vecsync run reconciler` also repairs what it finds (re-enqueues events); otherwise it only reports.',
    }),
  },
  maintenance: {
    reindexThreshold: setting({
      env: 'VECSYNC_REINDEX_DRIFT_THRESHOLD',
      schema: positiveInt,
      default: '10000',
      doc: 'pgvector maintenance: chunk rows changed (inserted, updated, deleted) since the last index build that queue a REINDEX INDEX CONCURRENTLY of the model table.',
    }),
    analyzeThreshold: setting({
      env: 'VECSYNC_ANALYZE_THRESHOLD',
      schema: positiveInt,
      default: '1000',
      doc: 'pgvector maintenance: chunk rows modified since the last ANALYZE that queue an ANALYZE (after bulk work).',
    }),
    intervalMs: setting({
      env: 'VECSYNC_MAINTENANCE_INTERVAL_MS',
      schema: nonNegativeInt,
      default: '60000',
      doc: 'pgvector maintenance loop period in `vecsync run reconciler|all` (0 turns the loop off).',
    }),
  },
  metrics: {
    host: setting({
      env: 'VECSYNC_METRICS_HOST',
      schema: z.string().min(1),
      default: '127.0.0.1',
      doc: 'Bind address of /metrics.',
    }),
    port: setting({
      env: 'VECSYNC_METRICS_PORT',
      schema: z.coerce.number().int().min(0).max(65535),
      default: '9464',
      doc: 'Port of /metrics (0 picks a free port).',
    }),
  },
  logLevel: setting({
    env: 'VECSYNC_LOG_LEVEL',
    schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    default: 'info',
    doc: 'Log level.',
  }),
};

/** The validated configuration: the schema's shape, plus what only the environment's presence tells. */
export type Config = Settled<typeof CONFIG_SCHEMA> & {
  /** VECSYNC_METADATA_ALLOWLIST was set: `migrate` changes the allowlist only then (or on first install). */
  metadataAllowlistGiven: boolean;
};

/** Reads and validates every variable. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = {
    ...settle(CONFIG_SCHEMA, env),
    metadataAllowlistGiven: (env.VECSYNC_METADATA_ALLOWLIST ?? '') !== '',
  };
  registerConfigSecrets(config);
  if (config.chunking.overlap >= config.chunking.size) {
    throw new ConfigError(
      `invalid VECSYNC_CHUNK_OVERLAP=${config.chunking.overlap}: must be smaller than VECSYNC_CHUNK_SIZE=${config.chunking.size}`,
    );
  }
  if (config.embedder.type === 'minilm' && config.embedder.dimensions !== 384) {
    throw new ConfigError(
      `invalid VECSYNC_EMBEDDING_DIMENSIONS=${config.embedder.dimensions}: the minilm model has 384 dimensions`,
    );
  }
  if (config.sink.type === 'pinecone' && config.sink.pinecone.apiKey === '') {
    throw new ConfigError('invalid PINECONE_API_KEY: required when VECSYNC_SINK=pinecone');
  }
  return config;
}

/** Secret values and URL passwords of a loaded config: redacted from every error and log line. */
function registerConfigSecrets(config: Config): void {
  for (const { path: at, setting: s } of listSettings(CONFIG_SCHEMA)) {
    const value = at.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
    if (typeof value !== 'string') continue;
    if (s.secret) registerSecret(value);
    if (value.includes('://')) {
      try {
        registerSecret(decodeURIComponent(new URL(value).password));
        registerSecret(new URL(value).password);
      } catch {
        // not a URL after all
      }
    }
  }
}

/** Every variable with its documentation, in declaration order (`vecsync config --markdown`). */
export function configVariables(): { env: string; default: string; doc: string; secret: boolean }[] {
  return listSettings(CONFIG_SCHEMA).map(({ setting: s }) => ({
    env: s.env,
    default: typeof s.default === 'function' ? 'derived' : (s.default ?? ''),
    doc: s.doc,
    secret: s.secret === true,
  }));
}

/** The effective values by variable name, secrets and URL passwords redacted (`vecsync config`). */
export function describeConfig(config: Config): Record<string, unknown> {
  return describeSettings(CONFIG_SCHEMA, config);
}

/** What the local stack reads. */
export function stackSettings(config: Config): StackSettings {
  return {
    stackHome: config.stackHome,
    ports: config.ports,
    sourceUrl: config.sourceUrl,
    pgvectorUrl: config.sink.pgvector.url,
    // Loaded when the stack probes, so commands that never do skip the Kafka client.
    probeKafka: async (brokers) => (await import('../adapters/kafka/client.ts')).describeCluster(brokers),
  };
}
