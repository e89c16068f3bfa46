/**
 * The one validated configuration schema. It is read once at start-up (`loadConfig`), fails fast
 * with the name of the bad variable, and no other module reads `process.env`.
 *
 * Each field's doc comment is the user documentation; the README's table is generated from
 * `CONFIG_VARIABLES` by `vecsync config --markdown`.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../domain/errors.ts';
import type { Ports } from '../stack/types.ts';

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

interface VariableSpec {
  schema: z.ZodType;
  /** Default as a string, or a function of the already-parsed ports (URLs follow port overrides). */
  default?: string | ((ports: Ports) => string);
  secret?: boolean;
  doc: string;
}

/** Every environment variable vecsync reads, declared once with type, default and documentation. */
export const CONFIG_VARIABLES = {
  VECSYNC_PG_PORT: { schema: port, default: '55432', doc: 'Port of the local stack PostgreSQL cluster.' },
  VECSYNC_KAFKA_PORT: { schema: port, default: '19092', doc: 'Port of the local stack Kafka broker.' },
  VECSYNC_KAFKA_CONTROLLER_PORT: {
    schema: port,
    default: '19093',
    doc: 'Port of the local stack KRaft controller listener.',
  },
  VECSYNC_REGISTRY_PORT: { schema: port, default: '18081', doc: 'Port of the local stack Apicurio Registry.' },
  VECSYNC_CONNECT_PORT: { schema: port, default: '18083', doc: 'Port of the local stack Kafka Connect REST API.' },
  VECSYNC_STACK_HOME: {
    schema: z.string().min(1),
    default: () => path.join(os.homedir(), '.cache', 'vecsync-stack'),
    doc: 'Where the local stack keeps downloads, builds, data, logs and pid files.',
  },
  VECSYNC_SOURCE_URL: {
    schema: z.string().url(),
    default: (p) => `postgres://postgres@127.0.0.1:${p.pg}/vecsync`,
    doc: 'Source-of-truth PostgreSQL (documents, ACLs, outbox, ledger).',
  },
  VECSYNC_PGVECTOR_URL: {
    schema: z.string().url(),
    default: (p) => `postgres://postgres@127.0.0.1:${p.pg}/vecsync_vectors`,
    doc: 'PostgreSQL database with pgvector used by the pgvector sink.',
  },
  VECSYNC_KAFKA_BROKERS: {
    schema: csv.pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1)),
    default: (p) => `127.0.0.1:${p.kafka}`,
    doc: 'Comma-separated Kafka bootstrap brokers (host:port).',
  },
  VECSYNC_SCHEMA_REGISTRY_URL: {
    schema: z.string().url(),
    default: (p) => `http://127.0.0.1:${p.registry}/apis/ccompat/v7`,
    doc: 'Confluent-compatible schema registry base URL (Apicurio: /apis/ccompat/v7).',
  },
  VECSYNC_CONNECT_URL: {
    schema: z.string().url(),
    default: (p) => `http://127.0.0.1:${p.connect}`,
    doc: 'Kafka Connect REST API.',
  },
  VECSYNC_SINK: { schema: z.enum(['pgvector', 'pinecone']), default: 'pgvector', doc: 'Vector store type.' },
  VECSYNC_SINK_NAME: {
    schema: z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lowercase letters, digits, _; max 31'),
    default: 'main',
    doc: "Name of this pipeline's sink instance; several sinks can be fed from the same topics, each with its own name, consumer groups and ledger rows.",
  },
  VECSYNC_GROUP_PREFIX: {
    schema: z.string().regex(/^[A-Za-z0-9._-]+$/),
    default: 'vecsync',
    doc: "Consumer groups are `<prefix>.<sink name>.<service>` (the embedder's is `<prefix>.embedder`).",
  },
  VECSYNC_TOPIC_PREFIX: {
    schema: z.string().regex(/^[A-Za-z0-9._-]+$/),
    default: 'vecsync',
    doc: 'Prefix of every topic (`<prefix>.outbox.<lane>`, `<prefix>.chunks.<model>`, ...).',
  },
  VECSYNC_EMBEDDER: { schema: z.enum(['hashing', 'openai']), default: 'hashing', doc: 'Embedding provider.' },
  VECSYNC_EMBEDDING_MODEL: {
    schema: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    default: 'hashing-384',
    doc: 'Name of the active embedding model, as registered in vecsync.embedding_models.',
  },
  VECSYNC_EMBEDDING_VERSION: { schema: positiveInt, default: '1', doc: 'Version of the active embedding model.' },
  VECSYNC_EMBEDDING_DIMENSIONS: { schema: positiveInt, default: '384', doc: 'Vector dimensions of the active model.' },
  VECSYNC_EMBED_BATCH_SIZE: { schema: positiveInt, default: '64', doc: 'Texts per embedding call.' },
  VECSYNC_OPENAI_BASE_URL: {
    schema: z.string().url(),
    default: 'http://127.0.0.1:11434/v1',
    doc: 'OpenAI-compatible API base URL (OpenAI, Ollama, vLLM, TEI); `/embeddings` is appended.',
  },
  VECSYNC_OPENAI_API_KEY: { schema: z.string(), default: '', secret: true, doc: 'API key for the openai embedder.' },
  VECSYNC_OPENAI_MODEL: {
    schema: z.string().min(1),
    default: 'text-embedding-3-small',
    doc: 'Model name sent to the OpenAI-compatible endpoint.',
  },
  VECSYNC_EMBED_TIMEOUT_MS: { schema: positiveInt, default: '30000', doc: 'Timeout of one embedding request.' },
  VECSYNC_EMBED_BREAKER_RESET_MS: {
    schema: positiveInt,
    default: '10000',
    doc: 'After repeated provider failures the embedding circuit opens; one probe is let through after this long.',
  },
  VECSYNC_CHUNK_SIZE: { schema: positiveInt, default: '800', doc: 'Target chunk size in characters.' },
  VECSYNC_CHUNK_OVERLAP: {
    schema: z.coerce.number().int().min(0),
    default: '100',
    doc: 'Chunk overlap in characters.',
  },
  VECSYNC_METADATA_ALLOWLIST: {
    schema: csv.pipe(z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/))),
    default: 'category,source,lang,tags',
    doc: 'Metadata keys that may leave PostgreSQL; every other key is dropped by the outbox trigger.',
  },
  VECSYNC_MAX_BODY_BYTES: { schema: positiveInt, default: '1048576', doc: 'Largest document body accepted.' },
  VECSYNC_MAX_CHUNKS: { schema: positiveInt, default: '512', doc: 'Most chunks per document.' },
  VECSYNC_MAX_METADATA_BYTES: {
    schema: positiveInt,
    default: '16384',
    doc: 'Largest allowlisted metadata (JSON bytes).',
  },
  VECSYNC_RETRY_MAX_ATTEMPTS: { schema: positiveInt, default: '6', doc: 'Attempts before a message is dead-lettered.' },
  VECSYNC_RETRY_INITIAL_MS: { schema: positiveInt, default: '200', doc: 'First retry delay; doubles with jitter.' },
  VECSYNC_RETRY_MAX_MS: { schema: positiveInt, default: '30000', doc: 'Largest retry delay.' },
  VECSYNC_RECONCILE_INTERVAL_MS: {
    schema: positiveInt,
    default: '600000',
    doc: '`vecsync run reconciler`: time between the start of one reconcile pass and the next.',
  },
  VECSYNC_RECONCILE_SETTLE_MS: {
    schema: z.coerce.number().int().min(0),
    default: '60000',
    doc: 'Documents changed within this window are in flight, not drift (reconciler and `vecsync reconcile`).',
  },
  VECSYNC_RECONCILE_REPAIR: {
    schema: bool,
    default: 'false',
    doc: '`vecsync run reconciler` also repairs what it finds (re-enqueues events); otherwise it only reports.',
  },
  VECSYNC_REINDEX_DRIFT_THRESHOLD: {
    schema: positiveInt,
    default: '10000',
    doc: 'pgvector maintenance: chunk rows changed (inserted, updated, deleted) since the last index build that queue a REINDEX INDEX CONCURRENTLY of the model table.',
  },
  VECSYNC_ANALYZE_THRESHOLD: {
    schema: positiveInt,
    default: '1000',
    doc: 'pgvector maintenance: chunk rows modified since the last ANALYZE that queue an ANALYZE (after bulk work).',
  },
  VECSYNC_MAINTENANCE_INTERVAL_MS: {
    schema: z.coerce.number().int().min(0),
    default: '60000',
    doc: 'pgvector maintenance loop period in `vecsync run reconciler|all` (0 turns the loop off).',
  },
  PINECONE_API_KEY: { schema: z.string(), default: '', secret: true, doc: 'Pinecone API key (Pinecone sink).' },
  VECSYNC_PINECONE_INDEX: { schema: z.string(), default: 'vecsync', doc: 'Pinecone index name.' },
  VECSYNC_PINECONE_HOST: {
    schema: z.string(),
    default: '',
    doc: 'Pinecone index host; when set the control plane is not called.',
  },
  VECSYNC_METRICS_HOST: { schema: z.string().min(1), default: '127.0.0.1', doc: 'Bind address of /metrics.' },
  VECSYNC_METRICS_PORT: {
    schema: z.coerce.number().int().min(0).max(65535),
    default: '9464',
    doc: 'Port of /metrics (0 picks a free port).',
  },
  VECSYNC_LOG_LEVEL: {
    schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    default: 'info',
    doc: 'Log level.',
  },
  VECSYNC_TEST_STACK: {
    schema: z.enum(['local', 'testcontainers']),
    default: 'local',
    doc: 'Test harness stack: the local processes, or testcontainers with the docker-compose images.',
  },
  VECSYNC_KEEP_STACK: { schema: bool, default: 'true', doc: 'Tests leave the local stack running afterwards.' },
} as const satisfies Record<string, VariableSpec>;

type Vars = typeof CONFIG_VARIABLES;
export type RawConfig = { [K in keyof Vars]: z.output<Vars[K]['schema']> };

export interface Config {
  raw: RawConfig;
  ports: Ports;
  stackHome: string;
  sourceUrl: string;
  pgvectorUrl: string;
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  connectUrl: string;
  sink: { type: 'pgvector' | 'pinecone'; name: string };
  groupPrefix: string;
  topicPrefix: string;
  embedder: {
    type: 'hashing' | 'openai';
    model: string;
    version: number;
    dimensions: number;
    batchSize: number;
    timeoutMs: number;
    breakerResetMs: number;
    openai: { baseUrl: string; apiKey: string; model: string };
  };
  chunking: { size: number; overlap: number };
  metadataAllowlist: string[];
  limits: { maxBodyBytes: number; maxChunks: number; maxMetadataBytes: number };
  retry: { maxAttempts: number; initialMs: number; maxMs: number };
  pinecone: { apiKey: string; index: string; host: string };
  metrics: { host: string; port: number };
  logLevel: RawConfig['VECSYNC_LOG_LEVEL'];
}

function parseVariable(name: string, spec: VariableSpec, env: NodeJS.ProcessEnv, ports: Ports): unknown {
  const given = env[name];
  const rawValue =
    given !== undefined && given !== ''
      ? given
      : typeof spec.default === 'function'
        ? spec.default(ports)
        : spec.default;
  const result = spec.schema.safeParse(rawValue);
  if (!result.success) {
    const shown = spec.secret ? '<redacted>' : JSON.stringify(rawValue);
    const why = result.error.issues.map((i) => i.message).join('; ');
    throw new ConfigError(`invalid ${name}=${shown}: ${why}`);
  }
  return result.data;
}

/** Reads and validates every variable. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const noPorts: Ports = { pg: 0, kafka: 0, kafkaController: 0, registry: 0, connect: 0 };
  const ports: Ports = {
    pg: parseVariable('VECSYNC_PG_PORT', CONFIG_VARIABLES.VECSYNC_PG_PORT, env, noPorts) as number,
    kafka: parseVariable('VECSYNC_KAFKA_PORT', CONFIG_VARIABLES.VECSYNC_KAFKA_PORT, env, noPorts) as number,
    kafkaController: parseVariable(
      'VECSYNC_KAFKA_CONTROLLER_PORT',
      CONFIG_VARIABLES.VECSYNC_KAFKA_CONTROLLER_PORT,
      env,
      noPorts,
    ) as number,
    registry: parseVariable('VECSYNC_REGISTRY_PORT', CONFIG_VARIABLES.VECSYNC_REGISTRY_PORT, env, noPorts) as number,
    connect: parseVariable('VECSYNC_CONNECT_PORT', CONFIG_VARIABLES.VECSYNC_CONNECT_PORT, env, noPorts) as number,
  };
  const raw = {} as Record<string, unknown>;
  for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) {
    raw[name] = parseVariable(name, spec as VariableSpec, env, ports);
  }
  const r = raw as RawConfig;
  if (r.VECSYNC_CHUNK_OVERLAP >= r.VECSYNC_CHUNK_SIZE) {
    throw new ConfigError(
      `invalid VECSYNC_CHUNK_OVERLAP=${r.VECSYNC_CHUNK_OVERLAP}: must be smaller than VECSYNC_CHUNK_SIZE=${r.VECSYNC_CHUNK_SIZE}`,
    );
  }
  if (r.VECSYNC_SINK === 'pinecone' && r.PINECONE_API_KEY === '') {
    throw new ConfigError('invalid PINECONE_API_KEY: required when VECSYNC_SINK=pinecone');
  }
  return {
    raw: r,
    ports,
    stackHome: r.VECSYNC_STACK_HOME,
    sourceUrl: r.VECSYNC_SOURCE_URL,
    pgvectorUrl: r.VECSYNC_PGVECTOR_URL,
    kafkaBrokers: r.VECSYNC_KAFKA_BROKERS,
    schemaRegistryUrl: r.VECSYNC_SCHEMA_REGISTRY_URL,
    connectUrl: r.VECSYNC_CONNECT_URL,
    sink: { type: r.VECSYNC_SINK, name: r.VECSYNC_SINK_NAME },
    groupPrefix: r.VECSYNC_GROUP_PREFIX,
    topicPrefix: r.VECSYNC_TOPIC_PREFIX,
    embedder: {
      type: r.VECSYNC_EMBEDDER,
      model: r.VECSYNC_EMBEDDING_MODEL,
      version: r.VECSYNC_EMBEDDING_VERSION,
      dimensions: r.VECSYNC_EMBEDDING_DIMENSIONS,
      batchSize: r.VECSYNC_EMBED_BATCH_SIZE,
      timeoutMs: r.VECSYNC_EMBED_TIMEOUT_MS,
      breakerResetMs: r.VECSYNC_EMBED_BREAKER_RESET_MS,
      openai: { baseUrl: r.VECSYNC_OPENAI_BASE_URL, apiKey: r.VECSYNC_OPENAI_API_KEY, model: r.VECSYNC_OPENAI_MODEL },
    },
    chunking: { size: r.VECSYNC_CHUNK_SIZE, overlap: r.VECSYNC_CHUNK_OVERLAP },
    metadataAllowlist: r.VECSYNC_METADATA_ALLOWLIST,
    limits: {
      maxBodyBytes: r.VECSYNC_MAX_BODY_BYTES,
      maxChunks: r.VECSYNC_MAX_CHUNKS,
      maxMetadataBytes: r.VECSYNC_MAX_METADATA_BYTES,
    },
    retry: {
      maxAttempts: r.VECSYNC_RETRY_MAX_ATTEMPTS,
      initialMs: r.VECSYNC_RETRY_INITIAL_MS,
      maxMs: r.VECSYNC_RETRY_MAX_MS,
    },
    pinecone: { apiKey: r.PINECONE_API_KEY, index: r.VECSYNC_PINECONE_INDEX, host: r.VECSYNC_PINECONE_HOST },
    metrics: { host: r.VECSYNC_METRICS_HOST, port: r.VECSYNC_METRICS_PORT },
    logLevel: r.VECSYNC_LOG_LEVEL,
  };
}

/** Names of secret variables, so logs and `config` output can redact them. */
export const SECRET_VARIABLES: readonly string[] = Object.entries(CONFIG_VARIABLES)
  .filter(([, spec]) => 'secret' in spec && spec.secret)
  .map(([name]) => name);
