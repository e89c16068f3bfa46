/**
 * The chunk records' codec against the schema registry (Confluent wire format). The Avro schema
 * and the record mapping are pure and live in domain/codecs/chunks.ts; this adapter registers the
 * schema, caches resolvers per writer schema id and turns registry failures into the error kinds.
 */
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type avro from 'avsc';
import { ConfigError, PoisonMessageError, RetriableError, describeError } from '../../domain/errors.ts';
import type { DocumentChunks } from '../../domain/types.ts';
import {
  chunkSchema,
  chunkType,
  fromAvroRecord,
  toAvroRecord,
  valueSubject,
  type AvroDocumentChunks,
} from '../../domain/codecs/chunks.ts';

/** Compatibility level of the chunk subjects: consumers on the new schema read old records. */
const CHUNK_COMPATIBILITY = COMPATIBILITY.BACKWARD;

export interface ChunkCodec {
  /**
   * Registers the schema under `<topic>-value` with compatibility BACKWARD (set on first
   * registration, checked afterwards) and uses its id for `encode`. Idempotent.
   */
  register(topic: string): Promise<number>;
  /** Confluent wire format of the record; `register` must have been called. */
  encode(record: DocumentChunks): Promise<Buffer>;
  /** The validated record, resolved to this schema from whichever schema wrote it. */
  decode(buffer: Buffer): Promise<DocumentChunks>;
}

export interface ChunkCodecOptions {
  /** Retries of each registry request (the client's own backoff); default 3. */
  registryRetries?: number;
}

/** `registryUrl`: the Confluent-compatible base URL, e.g. `http://127.0.0.1:18081/apis/ccompat/v7`. */
export function createChunkCodec(registryUrl: string, options: ChunkCodecOptions = {}): ChunkCodec {
  const registry = new SchemaRegistry({ host: registryUrl, retry: { retries: options.registryRetries ?? 3 } });
  const resolvers = new Map<number, avro.Resolver>();
  let schemaId: number | undefined;

  const resolverFor = async (id: number): Promise<avro.Resolver> => {
    const known = resolvers.get(id);
    if (known) return known;
    let writer: unknown;
    try {
      writer = await registry.getSchema(id);
    } catch (error) {
      if (statusOf(error) === 404)
        throw new PoisonMessageError('undecodable_avro', `unknown schema id ${id}`, { cause: error });
      throw new RetriableError(`schema registry unavailable: ${describeError(error)}`, { cause: error });
    }
    let resolver: avro.Resolver;
    try {
      resolver = chunkType.createResolver(writer as avro.Type);
    } catch (error) {
      throw new PoisonMessageError('undecodable_avro', `schema id ${id} cannot be read as ${chunkType.name}`, {
        cause: error,
      });
    }
    resolvers.set(id, resolver);
    return resolver;
  };

  return {
    async register(topic) {
      const subject = valueSubject(topic);
      try {
        // Pinned first: the client sets the level only after a first registration, and a registry
        // answers the global level (Apicurio: NONE) for a subject without its own, so a crash in
        // between, or a subject created elsewhere, would make every later register() refuse.
        await pinCompatibility(registryUrl, subject);
        const { id } = await registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(chunkSchema) },
          { subject, compatibility: CHUNK_COMPATIBILITY },
        );
        schemaId = id;
        return id;
      } catch (error) {
        throw registryError(`registering ${subject}`, error);
      }
    },

    async encode(record) {
      if (schemaId === undefined) throw new Error('chunk codec: register(topic) before encode');
      return registry.encode(schemaId, toAvroRecord(record));
    },

    async decode(buffer) {
      if (buffer.length < 5 || buffer[0] !== 0) {
        throw new PoisonMessageError(
          'undecodable_avro',
          'not in the schema registry wire format (magic byte 0 + schema id)',
        );
      }
      const resolver = await resolverFor(buffer.readInt32BE(1));
      let value: AvroDocumentChunks;
      try {
        value = chunkType.fromBuffer(buffer.subarray(5), resolver) as AvroDocumentChunks;
      } catch (error) {
        throw new PoisonMessageError('undecodable_avro', `Avro body does not decode: ${describeError(error)}`, {
          cause: error,
        });
      }
      return fromAvroRecord(value);
    },
  };
}

/**
 * `PUT /config/<subject>` with CHUNK_COMPATIBILITY (idempotent; allowed before the subject exists).
 * Apicurio creates a rule on the first PUT and answers a concurrent one 409 "rule already exists"
 * (replicas of a new model's embedder starting together): the rule exists then, and a second PUT
 * updates it.
 */
async function pinCompatibility(registryUrl: string, subject: string, attempt = 1): Promise<void> {
  const response = await fetch(`${registryUrl.replace(/\/+$/, '')}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: CHUNK_COMPATIBILITY }),
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status === 409 && attempt === 1) {
    await response.body?.cancel();
    return pinCompatibility(registryUrl, subject, 2);
  }
  if (!response.ok) {
    throw Object.assign(new Error(`PUT /config/${subject}: ${response.status} ${await response.text()}`), {
      status: response.status,
    });
  }
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Registration failures: an incompatible schema (409), an invalid one (422), a mismatched
 * compatibility level or refused credentials are deployment mistakes that retrying cannot fix;
 * anything else is the registry being unavailable. (The registry client reports connection
 * failures as status 400, so 400 cannot be read as a refusal.)
 */
function registryError(what: string, error: unknown): Error {
  const name = (error as { name?: unknown } | null)?.name;
  const status = statusOf(error);
  if (name === 'ConfluentSchemaRegistryCompatibilityError' || [401, 403, 409, 422].includes(status ?? 0)) {
    return new ConfigError(`${what}: ${describeError(error)}`, { cause: error });
  }
  return new RetriableError(`${what}: schema registry unavailable: ${describeError(error)}`, { cause: error });
}
