/**
 * The ledger (`vecsync.sync_state`) is the serialization point for a document: every writer and
 * propagator locks the ledger rows of the documents it is about to touch, decides with the pure
 * version guard, performs the sink write while holding the lock, then records the result and the
 * outbox status in the same transaction. See docs/architecture.md, "Ordering and concurrency".
 */
import type pg from 'pg';
import { describeError } from '../../domain/errors.ts';
import { classifyPgError } from '../../domain/pg-errors.ts';
import { prepared } from './pool.ts';
import type { DeadLetter } from '../kafka/dlq.ts';
import { reasonOf } from '../kafka/dlq.ts';
import type { LedgerRegisters } from '../../domain/transforms/version-guard.ts';

export interface LedgerKey {
  tenantId: string;
  documentId: string;
  modelKey: string;
}

/**
 * A ledger row, the one type for it: the guard's registers (domain/transforms/version-guard.ts)
 * plus bookkeeping. Writers, the propagator and repairs all read and write it through `Ledger`.
 */
export interface LedgerRow extends LedgerKey, LedgerRegisters {
  chunkCount: number;
  contentHash: string | null;
}

export function ledgerKeyString(key: LedgerKey): string {
  return `${key.tenantId}:${key.documentId}@${key.modelKey}`;
}

export interface LedgerTx {
  /**
   * Persists the next state of the rows the guard changed (applied_at = the time of this write,
   * after the sink acknowledged) and marks the outbox rows `processed`, in one statement.
   */
  record(rows: LedgerRow[], processedOutboxIds: string[]): Promise<void>;
  /**
   * Moves registers of locked rows back without recording an application (repairs: the repair
   * event must pass the guard). Only the given fields change.
   */
  reset(
    rows: (LedgerKey & Partial<Pick<LedgerRow, 'version' | 'acl_version' | 'tombstone' | 'chunkCount'>>)[],
  ): Promise<void>;
  /** A statement in the same transaction (repairs enqueue their events under the lock). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

interface LedgerRecord {
  tenant_id: string;
  document_id: string;
  model_key: string;
  version: string;
  acl_version: string;
  acl: string[];
  chunk_count: number;
  content_hash: string | null;
  tombstone: boolean;
}

const RECORD = `WITH saved AS (
         UPDATE vecsync.sync_state s
            SET version = u.v, acl_version = u.av, acl = a.acl, chunk_count = u.cc, content_hash = u.h,
                tombstone = u.tomb, applied_at = clock_timestamp()
           FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::int[], $8::text[], $9::bool[], $10::text[])
                AS u(t, d, m, v, av, cc, h, tomb, acl_json)
          CROSS JOIN LATERAL (SELECT coalesce(array_agg(x ORDER BY n), '{}') AS acl FROM jsonb_array_elements_text(u.acl_json::jsonb) WITH ORDINALITY AS e(x, n)) a
          WHERE s.sink_name = $1 AND s.tenant_id = u.t AND s.document_id = u.d AND s.model_key = u.m
          RETURNING 1
       ), processed AS (
         UPDATE vecsync.vector_sync_outbox
            SET status = 'processed', attempts = attempts + 1, error = NULL, processed_at = now()
          WHERE id = ANY($11::bigint[])
          RETURNING 1
       )
       SELECT (SELECT count(*) FROM saved) AS saved, (SELECT count(*) FROM processed) AS processed`;

const LOCK = `INSERT INTO vecsync.sync_state AS s (sink_name, tenant_id, document_id, model_key, version, acl_version, chunk_count, tombstone)
         SELECT $1, t, d, m, 0, 0, 0, false FROM unnest($2::text[], $3::text[], $4::text[]) AS u(t, d, m)
         ORDER BY t, d, m
         ON CONFLICT (sink_name, tenant_id, document_id, model_key) DO UPDATE SET version = s.version
         RETURNING s.tenant_id, s.document_id, s.model_key, s.version, s.acl_version, s.acl, s.chunk_count, s.content_hash, s.tombstone`;

export class Ledger {
  constructor(
    private readonly pool: pg.Pool,
    readonly sinkName: string,
  ) {}

  /**
   * Locks the ledger rows of `keys` (creating missing ones) and runs `fn` with them inside one
   * source transaction. Rows are locked in key order, so concurrent writers and propagators
   * cannot deadlock; the transaction is BEGIN, one locking upsert, `fn`'s work, COMMIT.
   */
  async withLocked<T>(keys: LedgerKey[], fn: (rows: Map<string, LedgerRow>, tx: LedgerTx) => Promise<T>): Promise<T> {
    const unique = [...new Map(keys.map((k) => [ledgerKeyString(k), k])).values()];
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw classifyPgError(error, 'ledger database');
    }
    try {
      await client.query('BEGIN');
      // ON CONFLICT DO UPDATE locks existing rows like SELECT ... FOR UPDATE and returns them, and
      // inserts (and locks) missing ones with the empty-ledger values: one round trip.
      const locked = await client.query<LedgerRecord>({
        ...prepared(LOCK),
        values: [
          this.sinkName,
          unique.map((k) => k.tenantId),
          unique.map((k) => k.documentId),
          unique.map((k) => k.modelKey),
        ],
      });
      const rows = new Map<string, LedgerRow>();
      for (const r of locked.rows) {
        const row: LedgerRow = {
          tenantId: r.tenant_id,
          documentId: r.document_id,
          modelKey: r.model_key,
          version: Number(r.version),
          acl_version: Number(r.acl_version),
          acl: r.acl,
          chunkCount: r.chunk_count,
          contentHash: r.content_hash,
          tombstone: r.tombstone,
        };
        rows.set(ledgerKeyString(row), row);
      }
      const result = await fn(rows, {
        record: (next, ids) => this.record(client, next, ids),
        reset: (resets) => this.reset(client, resets),
        query: (sql, params) => client.query(sql, params),
      });
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw classifyPgError(error, 'ledger database');
    } finally {
      client.release();
    }
  }

  private async reset(client: pg.PoolClient, rows: Parameters<LedgerTx['reset']>[0]): Promise<void> {
    if (rows.length === 0) return;
    await client.query(
      `UPDATE vecsync.sync_state s
          SET version = coalesce(u.v, s.version), acl_version = coalesce(u.av, s.acl_version),
              tombstone = coalesce(u.tomb, s.tombstone), chunk_count = coalesce(u.cc, s.chunk_count)
         FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bool[], $8::int[]) AS u(t, d, m, v, av, tomb, cc)
        WHERE s.sink_name = $1 AND s.tenant_id = u.t AND s.document_id = u.d AND s.model_key = u.m`,
      [
        this.sinkName,
        rows.map((r) => r.tenantId),
        rows.map((r) => r.documentId),
        rows.map((r) => r.modelKey),
        rows.map((r) => r.version ?? null),
        rows.map((r) => r.acl_version ?? null),
        rows.map((r) => r.tombstone ?? null),
        rows.map((r) => r.chunkCount ?? null),
      ],
    );
  }

  private async record(client: pg.PoolClient, rows: LedgerRow[], processedOutboxIds: string[]): Promise<void> {
    const ids = numericIds(processedOutboxIds);
    if (rows.length === 0 && ids.length === 0) return;
    await client.query({
      ...prepared(RECORD),
      values: [
        this.sinkName,
        rows.map((r) => r.tenantId),
        rows.map((r) => r.documentId),
        rows.map((r) => r.modelKey),
        rows.map((r) => r.version),
        rows.map((r) => r.acl_version),
        rows.map((r) => r.chunkCount),
        rows.map((r) => r.contentHash),
        rows.map((r) => r.tombstone),
        // text[][] cannot be ragged, so each ACL travels as a JSON array (kept in order: the guard normalized it).
        rows.map((r) => JSON.stringify(r.acl)),
        ids,
      ],
    });
  }
}

function numericIds(ids: string[]): string[] {
  return [...new Set(ids.filter((id) => /^\d+$/.test(id)))];
}

/** Outbox status write-back; ids that are not numeric (e.g. replays of hand-made events) are ignored. */
export async function markOutbox(
  client: pg.ClientBase | pg.Pool,
  ids: string[],
  status: 'processed' | 'failed',
  error?: string,
): Promise<void> {
  const numeric = numericIds(ids);
  if (numeric.length === 0) return;
  await client.query(
    `UPDATE vecsync.vector_sync_outbox
        SET status = $2, attempts = attempts + 1, error = $3,
            processed_at = CASE WHEN $2 = 'processed' THEN now() ELSE processed_at END
      WHERE id = ANY($1::bigint[])`,
    [numeric, status, error ?? null],
  );
}

/** Marks the outbox rows of dead-lettered messages `failed`, with the reason as the error. */
export async function markDeadLetters(pool: pg.Pool, letters: DeadLetter[]): Promise<void> {
  try {
    for (const letter of letters) {
      const id = letter.message.headers['outbox_id'];
      if (id)
        await markOutbox(
          pool,
          [id],
          'failed',
          `${reasonOf(letter.error)}: ${describeError(letter.error)}`.slice(0, 1000),
        );
    }
  } catch (error) {
    throw classifyPgError(error, 'outbox status');
  }
}
