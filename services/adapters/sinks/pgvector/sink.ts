/**
 * The pgvector sink: the `Sink` interface over a connection pool. A thin adapter: SQL text lives in
 * `sql.ts`, parameters and validation in `encoding.ts`, error meaning in `errors.ts`, per-item
 * isolation in `../batch.ts`; this file runs statements and maps rows.
 */
import pg from 'pg';
import { ConfigError, RetriableError } from '../../../domain/errors.ts';
import type { Logger } from '../../telemetry/log.ts';
import { driveItems } from '../driver.ts';
import type {
  AclWrite,
  DocumentRef,
  DocumentWrite,
  IndexSpec,
  InspectOptions,
  ItemResult,
  ListDocumentsOptions,
  SearchHit,
  SearchQuery,
  Sink,
  StoredChunk,
  StoredDocument,
} from '../types.ts';
import { pgvectorConfigFrom, type PgvectorConfig, type PgvectorOptions, type PgvectorRootConfig } from './config.ts';
import {
  checkAclWrite,
  checkDocumentRef,
  checkDocumentWrite,
  checkQueryDimensions,
  checkSearchQuery,
  documentKey,
} from '../validate.ts';
import { aclParams, decodeVectorText, deleteParams, encodeVector, writeParams } from './encoding.ts';
import { classifyPgError, toSinkError } from './errors.ts';
import { prepared } from '../../postgres/pool.ts';
import { checkPgvectorHealth } from './health.ts';
import { chunkTableNames, tableComment, type ChunkTableNames } from './naming.ts';
import {
  DESCRIBE_TABLE,
  ENSURE_LOCK,
  LOCK_DOCUMENTS,
  MAX_DIMENSIONS,
  SET_ACLS,
  VECTOR_TYPE_OID,
  baseDdl,
  chunkTableDdl,
  deleteDocumentsSql,
  inspectSql,
  listDocumentsSql,
  listTenantsSql,
  searchSettings,
  searchSql,
  writeDocumentsSql,
  type FencedRow,
} from './sql.ts';

interface ChunkTable {
  names: ChunkTableNames;
  dimensions: number;
}

function sqlState(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** How the per-item driver reads this sink's errors: a data error is one item's, see errors.ts. */
function itemErrors(what: string) {
  return {
    isItemError: (error: unknown) => classifyPgError(error) === 'data',
    toItemError: (error: unknown) => toSinkError(error, what),
  };
}

/**
 * Rethrows an unavailable database as RetriableError and a refused role as CredentialsError;
 * everything else as it is.
 */
function rethrow(error: unknown, what: string): never {
  const kind = classifyPgError(error);
  throw kind === 'unavailable' || kind === 'credentials' ? toSinkError(error, what) : error;
}

export class PgvectorSink implements Sink {
  readonly type = 'pgvector';
  readonly name: string;
  readonly #config: PgvectorConfig;
  readonly #pool: pg.Pool;
  /** modelKey → the table, once created or checked by `ensureIndex`. */
  readonly #ensured = new Map<string, Promise<ChunkTable>>();
  /** modelKey → a table found by a read (never caches "missing": the writer may create it). */
  readonly #known = new Map<string, ChunkTable>();
  #base: Promise<void> | undefined;
  #vectorOid: Promise<number> | undefined;
  #closed = false;

  constructor(config: PgvectorConfig, log?: Logger) {
    this.#config = config;
    this.name = config.sinkName;
    this.#pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize,
      connectionTimeoutMillis: config.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: config.statementTimeoutMs,
      application_name: `vecsync-sink-${config.sinkName}`,
      keepAlive: true,
    });
    // An idle client that loses its connection (database restart) is dropped by the pool and the
    // next query reconnects; without a listener the 'error' event would crash the process.
    const lost = (error: Error) => log?.warn({ err: error.message, sink: this.name }, 'pgvector sink: connection lost');
    this.#pool.on('error', lost);
    // The same for a checked-out client: its next query fails (retriably) instead.
    this.#pool.on('connect', (client) => client.on('error', lost));
  }

  async ensureIndex(index: IndexSpec): Promise<void> {
    await this.#ready(index);
  }

  async writeDocuments(index: IndexSpec, writes: DocumentWrite[]): Promise<ItemResult[]> {
    this.#open();
    return driveItems(writes, async () => {
      const table = await this.#ready(index);
      const vectorOid = await this.#getVectorOid();
      const sql = writeDocumentsSql(table.names, table.dimensions);
      return {
        check: (write) => checkDocumentWrite(write, table.dimensions),
        keyOf: documentKey,
        write: (items) =>
          this.#fenced(items, sql, writeParams(this.name, index.modelKey, items, table.dimensions, vectorOid)),
        ...itemErrors('document write'),
      };
    });
  }

  async deleteDocuments(indexes: IndexSpec[], refs: DocumentRef[]): Promise<ItemResult[]> {
    this.#open();
    return driveItems(refs, async () => {
      const unique = [...new Map(indexes.map((index) => [index.modelKey, index])).values()];
      const tables = await Promise.all(unique.map((index) => this.#ready(index)));
      await this.#ensureBase();
      const sql = deleteDocumentsSql(tables.map((t) => t.names));
      const modelKeys = unique.map((index) => index.modelKey);
      // Deletes are idempotent, so repeated documents need no waves.
      return {
        check: checkDocumentRef,
        write: (items) => this.#fenced(items, sql, deleteParams(this.name, items, modelKeys)),
        ...itemErrors('document delete'),
      };
    });
  }

  /**
   * The ACL lives in one row per document (`vecsync_sink.document_acl`), shared by every model's
   * table, so `indexes` need not be touched: one statement, no chunk rewritten, no re-embedding.
   */
  async setAcls(_indexes: IndexSpec[], writes: AclWrite[]): Promise<ItemResult[]> {
    this.#open();
    return driveItems(writes, async () => {
      await this.#ensureBase();
      return {
        check: checkAclWrite,
        keyOf: documentKey,
        write: (items) => this.#fenced(items, SET_ACLS, [this.name, aclParams(items)]),
        ...itemErrors('ACL write'),
      };
    });
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    this.#open();
    checkSearchQuery(query);
    const table = await this.#describe(query.modelKey);
    if (!table) {
      throw new ConfigError(
        `search: the pgvector sink has no index for model ${query.modelKey} (nothing written yet?)`,
      );
    }
    checkQueryDimensions(query, table.dimensions);
    const efSearch = Math.min(1000, Math.max(this.#config.efSearch, query.topK));
    const rows = await this.#withClient(async (client) => {
      try {
        // BEGIN and SET LOCAL in one round trip: the settings end with the transaction and never
        // leak into the pooled connection.
        await client.query(searchSettings(efSearch, this.#config.maxScanTuples));
        const result = await client.query<{ document_id: string; chunk_index: number; content: string; score: number }>(
          searchSql(table.names),
          [encodeVector(query.vector), this.name, query.tenantId, query.principal, query.topK],
        );
        await client.query('COMMIT');
        return result.rows;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }, 'search');
    return rows.map((r) => ({
      documentId: r.document_id,
      chunkIndex: r.chunk_index,
      score: r.score,
      content: r.content,
    }));
  }

  async inspect(
    index: IndexSpec,
    tenantId: string,
    documentId?: string,
    options: InspectOptions = {},
  ): Promise<StoredChunk[]> {
    this.#open();
    const table = await this.#describe(index.modelKey, index.dimensions);
    if (!table) return [];
    const withEmbeddings = options.includeEmbeddings === true;
    const rows = await this.#read<{
      tenant_id: string;
      document_id: string;
      chunk_index: number;
      document_version: string;
      acl_version: string;
      acl: string[];
      model_key: string;
      content_hash: string;
      embedding?: string;
    }>(inspectSql(table.names, withEmbeddings), [this.name, tenantId, documentId ?? null], 'inspect');
    return rows.map((r) => {
      const chunk: StoredChunk = {
        tenant_id: r.tenant_id,
        document_id: r.document_id,
        chunk_index: r.chunk_index,
        document_version: Number(r.document_version),
        acl_version: Number(r.acl_version),
        acl: r.acl,
        model: r.model_key,
        content_hash: r.content_hash,
      };
      if (withEmbeddings && r.embedding !== undefined) chunk.embedding = decodeVectorText(r.embedding);
      return chunk;
    });
  }

  async *listDocuments(
    index: IndexSpec,
    tenantId: string,
    options: ListDocumentsOptions = {},
  ): AsyncIterable<StoredDocument> {
    this.#open();
    const table = await this.#describe(index.modelKey, index.dimensions);
    if (!table) return;
    const pageSize = this.#config.listPageSize;
    const buckets = options.buckets;
    if (buckets && buckets.ids.length === 0) return;
    const bucketParams = buckets ? [buckets.count, buckets.ids] : [];
    let after: string | undefined;
    for (;;) {
      // Each page is its own query on any pooled connection: an abandoned iterator holds nothing.
      const rows = await this.#read<{
        document_id: string;
        document_version: string;
        chunk_indexes: number[];
        acl_version: string;
        acl: string[];
      }>(
        listDocumentsSql(table.names, after !== undefined, buckets !== undefined),
        [this.name, tenantId, pageSize, ...(after === undefined ? [] : [after]), ...bucketParams],
        'list documents',
      );
      for (const r of rows) {
        yield {
          documentId: r.document_id,
          documentVersion: Number(r.document_version),
          aclVersion: Number(r.acl_version),
          acl: r.acl,
          chunkIndexes: r.chunk_indexes,
        };
      }
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]?.document_id;
    }
  }

  async listTenants(index: IndexSpec): Promise<string[]> {
    this.#open();
    const table = await this.#describe(index.modelKey, index.dimensions);
    if (!table) return [];
    const rows = await this.#read<{ tenant_id: string }>(listTenantsSql(table.names), [this.name], 'list tenants');
    return rows.map((r) => r.tenant_id);
  }

  /** Drops this sink's rows of the model; the table goes too once no other sink name uses it. */
  async dropIndex(index: IndexSpec): Promise<void> {
    this.#open();
    const names = chunkTableNames(index.modelKey);
    try {
      const exists = await this.#pool.query(DESCRIBE_TABLE, [names.table]);
      if (exists.rowCount === 0) return;
      await this.#pool.query(`DELETE FROM ${names.qualified} WHERE sink_name = $1`, [this.name]);
      const others = await this.#pool.query(`SELECT 1 FROM ${names.qualified} LIMIT 1`);
      if (others.rowCount === 0) await this.#pool.query(`DROP TABLE IF EXISTS ${names.qualified}`);
    } catch (error) {
      rethrow(error, 'drop index');
    }
    this.#ensured.delete(index.modelKey);
    this.#known.delete(index.modelKey);
  }

  async healthCheck(): Promise<void> {
    this.#open();
    await checkPgvectorHealth(this.#pool);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  #open(): void {
    if (this.#closed) throw new Error(`pgvector sink ${this.name} is closed`);
  }

  /**
   * One fenced write: a transaction of its own that locks the items' documents
   * (`LOCK_DOCUMENTS`), then runs `sql`, which writes only what the fence lets through and returns
   * the refused items. A writer that dies mid-way commits nothing (COMMIT is never sent). Errors
   * come out as the driver classifies them (raw pg errors); a table or vector type that went away
   * under us (42P01, 42804) is forgotten, so the retry creates or looks it up again.
   */
  async #fenced(items: readonly DocumentRef[], sql: string, values: unknown[]): Promise<ItemResult[]> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query({
        ...prepared(LOCK_DOCUMENTS),
        values: [this.name, items.map((i) => i.tenantId), items.map((i) => i.documentId)],
      });
      const refused = (await client.query<FencedRow>({ ...prepared(sql), values })).rows;
      await client.query('COMMIT');
      const results: ItemResult[] = items.map(() => ({ ok: true }));
      for (const row of refused) if (row.refused !== null) results[row.ord] = { ok: true, fenced: row.refused };
      return results;
    } catch (error) {
      if (classifyPgError(error) === 'unavailable') broken = error instanceof Error ? error : new Error(String(error));
      else await client.query('ROLLBACK').catch(() => undefined);
      const code = sqlState(error);
      if (code === '42P01' || code === '42804') {
        this.#ensured.clear();
        this.#known.clear();
        this.#base = undefined;
        this.#vectorOid = undefined;
        throw new RetriableError(`pgvector sink: schema changed under the writer: ${(error as Error).message}`, {
          cause: error,
        });
      }
      throw error;
    } finally {
      // A client whose connection failed is destroyed instead of going back to the pool.
      client.release(broken);
    }
  }

  async #read<R extends pg.QueryResultRow>(sql: string, values: unknown[], what: string): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(sql, values)).rows;
    } catch (error) {
      rethrow(error, what);
    }
  }

  async #withClient<T>(fn: (client: pg.PoolClient) => Promise<T>, what: string): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      rethrow(error, what);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (error) {
      if (classifyPgError(error) === 'unavailable') broken = error instanceof Error ? error : new Error(String(error));
      rethrow(error, what);
    } finally {
      // A client whose connection failed is destroyed instead of going back to the pool.
      client.release(broken);
    }
  }

  #ensureBase(): Promise<void> {
    this.#base ??= this.#withClient(async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(ENSURE_LOCK);
        await client.query(baseDdl().join(';\n'));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }, 'ensure schema').catch((error: unknown) => {
      this.#base = undefined;
      throw error;
    });
    return this.#base;
  }

  #ready(index: IndexSpec): Promise<ChunkTable> {
    this.#open();
    let ready = this.#ensured.get(index.modelKey);
    if (!ready) {
      ready = this.#create(index).catch((error: unknown) => {
        this.#ensured.delete(index.modelKey);
        throw error;
      });
      this.#ensured.set(index.modelKey, ready);
    }
    return ready.then((table) => {
      if (table.dimensions !== index.dimensions) throw dimensionMismatch(table, index);
      return table;
    });
  }

  async #create(index: IndexSpec): Promise<ChunkTable> {
    const names = chunkTableNames(index.modelKey);
    if (!Number.isInteger(index.dimensions) || index.dimensions < 1 || index.dimensions > MAX_DIMENSIONS) {
      throw new ConfigError(
        `model ${index.modelKey}: dimensions must be an integer in [1, ${MAX_DIMENSIONS}] (HNSW limit)`,
      );
    }
    const table = await this.#withClient(async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(ENSURE_LOCK);
        await client.query(baseDdl().join(';\n'));
        const existing = (
          await client.query<{ dimensions: number | null; comment: string | null }>(DESCRIBE_TABLE, [names.table])
        ).rows[0];
        if (existing) {
          checkExisting(names, index, existing);
        } else {
          const ddl = chunkTableDdl(names, index.modelKey, index.dimensions, {
            m: this.#config.hnswM,
            efConstruction: this.#config.hnswEfConstruction,
          });
          await client.query(ddl.join(';\n'));
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      return { names, dimensions: index.dimensions };
    }, 'ensure index');
    this.#base ??= Promise.resolve();
    this.#known.set(index.modelKey, table);
    return table;
  }

  /** The table of a model if it exists (reads never create tables). */
  async #describe(modelKey: string, expectedDimensions?: number): Promise<ChunkTable | undefined> {
    let table = this.#known.get(modelKey);
    if (!table) {
      const names = chunkTableNames(modelKey);
      const row = (
        await this.#read<{ dimensions: number | null; comment: string | null }>(
          DESCRIBE_TABLE,
          [names.table],
          'describe index',
        )
      )[0];
      if (!row) return undefined;
      checkExisting(names, { modelKey, dimensions: row.dimensions ?? 0 }, row);
      table = { names, dimensions: row.dimensions ?? 0 };
      this.#known.set(modelKey, table);
    }
    if (expectedDimensions !== undefined && table.dimensions !== expectedDimensions) {
      throw dimensionMismatch(table, { modelKey, dimensions: expectedDimensions });
    }
    return table;
  }

  #getVectorOid(): Promise<number> {
    this.#vectorOid ??= this.#read<{ oid: number | null }>(VECTOR_TYPE_OID, [], 'vector type')
      .then((rows) => {
        const oid = rows[0]?.oid;
        if (oid === null || oid === undefined) {
          throw new RetriableError('pgvector sink: the vector extension is not installed in the sink database');
        }
        return oid;
      })
      .catch((error: unknown) => {
        this.#vectorOid = undefined;
        throw error;
      });
    return this.#vectorOid;
  }
}

function dimensionMismatch(table: ChunkTable, index: IndexSpec): ConfigError {
  return new ConfigError(
    `pgvector sink: ${table.names.qualified} holds vector(${table.dimensions}) but model ${index.modelKey} is ` +
      `configured with ${index.dimensions} dimensions; a model with other dimensions needs a new model version`,
  );
}

function checkExisting(
  names: ChunkTableNames,
  index: IndexSpec,
  existing: { dimensions: number | null; comment: string | null },
): void {
  if (existing.dimensions === null || existing.dimensions < 1) {
    throw new ConfigError(`pgvector sink: ${names.qualified} exists but has no vector(n) embedding column`);
  }
  if (existing.comment !== null && existing.comment !== tableComment(index.modelKey)) {
    throw new ConfigError(
      `pgvector sink: ${names.qualified} belongs to another model (${existing.comment}); model keys ${index.modelKey} collide`,
    );
  }
  if (existing.dimensions !== index.dimensions) {
    throw dimensionMismatch({ names, dimensions: existing.dimensions }, index);
  }
}

export interface PgvectorSinkOptions {
  log?: Logger;
  /** Options beyond the root configuration (tests, tools); validated like the rest. */
  overrides?: Partial<PgvectorOptions>;
}

/** The registry's factory: `VECSYNC_SINK=pgvector`. */
export function createPgvectorSink(root: PgvectorRootConfig, options: PgvectorSinkOptions = {}): Sink {
  return new PgvectorSink(pgvectorConfigFrom(root, options.overrides), options.log);
}
