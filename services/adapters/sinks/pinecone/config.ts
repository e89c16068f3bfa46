/**
 * Configuration of the Pinecone sink. Each option is declared once, with its type, default and
 * documentation; `compilePineconeConfig` is the one validating step, and its messages name the
 * bad field. Unknown keys are rejected, so a typo never silently falls back to a default.
 *
 * The defaults are Pinecone's documented per-request limits (1,000 vectors and 2 MB per upsert,
 * 1,000 ids per fetch or delete, 40 KB of metadata per record, 100 ids per list page).
 */
import { z } from 'zod';
import { ConfigError } from '../../../domain/errors.ts';
import { setting } from '../../../domain/settings.ts';
import { parseIndexTargets, type IndexTargets } from './targets.ts';

/** This sink's section of the root configuration (`config.sink.pinecone`). */
export const PINECONE_SETTINGS = {
  apiKey: setting({
    env: 'PINECONE_API_KEY',
    schema: z.string(),
    default: '',
    secret: true,
    doc: 'Pinecone API key (Pinecone sink).',
  }),
  index: setting({
    env: 'VECSYNC_PINECONE_INDEX',
    schema: z.string(),
    default: 'vecsync',
    doc: 'Pinecone index name.',
  }),
  host: setting({
    env: 'VECSYNC_PINECONE_HOST',
    schema: z.string(),
    default: '',
    doc: 'Pinecone index host; when set the control plane is not called.',
  }),
};

/** The part of the root configuration (`loadConfig()`) this sink reads. */
export interface PineconeRootConfig {
  /** VECSYNC_SINK_NAME, and PINECONE_API_KEY, VECSYNC_PINECONE_INDEX, VECSYNC_PINECONE_HOST */
  sink: { name: string; pinecone?: { apiKey: string; index: string; host: string } };
  /** VECSYNC_EMBEDDING_MODEL and VECSYNC_EMBEDDING_VERSION: the active model. */
  embedder?: { model: string; version: number };
  /** VECSYNC_MAX_CHUNKS */
  limits?: { maxChunks: number };
  /** VECSYNC_RETRY_*: the request-level retry policy (the embedders use the same). */
  retry?: { maxAttempts: number; initialMs: number; maxMs: number };
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const PINECONE_OPTIONS = z
  .object({
    /** PINECONE_API_KEY. Sent as the `Api-Key` header; never logged. */
    apiKey: z.string().min(1, 'required (PINECONE_API_KEY)'),
    /** VECSYNC_SINK_NAME; names the sink in logs and errors (the index host is what separates sinks). */
    sinkName: z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'lowercase letters, digits, _; max 31'),
    /**
     * Which Pinecone index serves which model, see `targets.ts`: with any host configured the sink
     * never calls the control plane, and every model it is asked about needs a host.
     */
    targets: z.custom<IndexTargets>((v) => typeof v === 'object' && v !== null && 'activeModelKey' in v),
    /**
     * Control plane URL (default `https://api.pinecone.io`); only used for models without a host,
     * to resolve an index name to its host and to create a missing index.
     */
    controllerHostUrl: z.string().url().optional(),
    /** Cloud and region of an index the sink creates (models without a host, index missing). */
    cloud: z.enum(['aws', 'gcp', 'azure']).default('aws'),
    region: z.string().min(1).default('us-east-1'),
    /**
     * Highest chunk count a document can have (VECSYNC_MAX_CHUNKS). Deletes and shrinks remove ids
     * `#0..#maxChunks-1` by id, which needs no (eventually consistent) listing to find fresh chunks.
     */
    maxChunks: int(1, 100_000).default(512),
    /** Vectors per upsert request (Pinecone: at most 1,000). */
    maxVectorsPerUpsert: int(1, 1000).default(1000),
    /**
     * JSON bytes per upsert request, measured on the body the SDK sends (Pinecone: at most 2 MB;
     * the default stays below both 2,000,000 and 2 MiB).
     */
    maxUpsertBytes: int(10_000, 2_000_000).default(2_000_000),
    /** Ids per delete request (Pinecone: at most 1,000). */
    maxIdsPerDelete: int(1, 1000).default(1000),
    /**
     * Ids per fetch request (Pinecone: at most 1,000). Fetch is a GET with the ids in the query
     * string, so a batch is also cut at `maxFetchUrlChars` of encoded ids.
     */
    maxIdsPerFetch: int(1, 1000).default(1000),
    /** Longest encoded id list of one fetch URL; keeps requests under common URL limits (8 KB). */
    maxFetchUrlChars: int(200, 60_000).default(6_000),
    /** Ids per `list` page (Pinecone: 100 by default). */
    listPageSize: int(1, 100).default(100),
    /** Metadata bytes per record (Pinecone: 40 KB). A document over it is a poison message. */
    maxMetadataBytes: int(1_000, 40_960).default(40_960),
    /** Requests in flight per sink call (upserts, deletes, fetches, lists). */
    concurrency: int(1, 64).default(4),
    /** `update` requests in flight during an ACL change. */
    aclUpdateConcurrency: int(1, 64).default(8),
    /**
     * Per-record `update`s per second per namespace (Pinecone rate-limits updates per record,
     * about 100/s per namespace); the sink paces itself below it instead of collecting 429s.
     */
    updatesPerSecond: int(1, 10_000).default(100),
    /** Time limit of one HTTP request; a request that runs out is retriable. */
    requestTimeoutMs: int(100, 600_000).default(30_000),
    /**
     * Request-level retries (jittered exponential backoff, `core/retry.ts`) of retriable answers:
     * 429 (waiting Retry-After when given and not above `retryMaxMs`), 5xx, timeouts, lost
     * connections. What is still failing after them is reported retriable to the caller, whose
     * message-level policy retries until it succeeds. From VECSYNC_RETRY_MAX_ATTEMPTS,
     * VECSYNC_RETRY_INITIAL_MS and VECSYNC_RETRY_MAX_MS when the root configuration has them.
     */
    retryMaxAttempts: int(1, 1000).default(8),
    retryInitialMs: int(1, 60_000).default(100),
    retryMaxMs: int(1, 600_000).default(10_000),
  })
  .strict();

export type PineconeOptions = z.input<typeof PINECONE_OPTIONS>;
export type PineconeConfig = z.output<typeof PINECONE_OPTIONS>;

/** Validates options; throws ConfigError naming the first bad field. */
export function compilePineconeConfig(options: PineconeOptions): PineconeConfig {
  const result = PINECONE_OPTIONS.safeParse(options);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : (issue?.code ?? 'options');
    const keys = issue && 'keys' in issue ? ` (${(issue.keys as string[]).join(', ')})` : '';
    throw new ConfigError(`invalid pinecone sink option ${field}${keys}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

/** The sink's configuration from the root config, with optional overrides (tests, tools). */
export function pineconeConfigFrom(root: PineconeRootConfig, overrides: Partial<PineconeOptions> = {}): PineconeConfig {
  const pinecone = root.sink.pinecone;
  if (!pinecone && !overrides.targets) {
    throw new ConfigError('pinecone sink: the root configuration has no pinecone section (PINECONE_API_KEY, ...)');
  }
  if (!root.embedder && !overrides.targets) {
    throw new ConfigError('pinecone sink: the root configuration names no active embedding model');
  }
  const targets =
    overrides.targets ??
    parseIndexTargets({
      activeModelKey: `${root.embedder!.model}.v${root.embedder!.version}`,
      index: pinecone!.index,
      host: pinecone!.host,
    });
  return compilePineconeConfig({
    apiKey: pinecone?.apiKey ?? '',
    sinkName: root.sink.name,
    ...(root.limits ? { maxChunks: root.limits.maxChunks } : {}),
    ...(root.retry
      ? {
          retryMaxAttempts: root.retry.maxAttempts,
          retryInitialMs: root.retry.initialMs,
          retryMaxMs: root.retry.maxMs,
        }
      : {}),
    ...overrides,
    targets,
  });
}
