/**
 * Executes repair plans (see plan.ts): one source transaction per batch that locks the ledger rows
 * of the batch the way the writer and the propagator do (`SELECT ... FOR UPDATE` in key order, so
 * no deadlock with them), re-reads the documents, plans, resets the ledger registers and enqueues
 * the outbox events with the SQL helpers every other producer of events uses
 * (`vecsync.enqueue_upsert`, `enqueue_delete`, `enqueue_acl`, `append_state`, `append_deleted_state`).
 * The events then travel the normal path: Debezium, the lanes, the embedder, the writer and the
 * propagator, under the version guard.
 */
import type pg from 'pg';
import { classifyPgError } from '../../domain/pg-errors.ts';
import { planRepair, type LedgerRegisters, type RepairAction, type RepairItem, type SourceState } from './plan.ts';
import { sourceByKeys, type SourceRow } from './source.ts';

export interface RepairTarget {
  sinkName: string;
  modelKey: string;
  /** The registered model behind `modelKey`; null: content repairs are skipped. */
  model: { name: string; version: number } | null;
}

export interface RepairCounts {
  /** Upserts enqueued on the bulk lane (missing, stale, orphan chunks). */
  upserts: number;
  /** Deletes enqueued on the priority lane (ghosts). */
  deletes: number;
  /** ACL events enqueued on the priority lane. */
  acls: number;
  /** States published again to the state topic. */
  states: number;
  /** Ledger rows whose registers were moved back so the repair events apply. */
  ledger_resets: number;
  /** Documents not repaired (changed since they were judged, or no registered model). */
  skipped: number;
}

export function emptyRepairCounts(): RepairCounts {
  return { upserts: 0, deletes: 0, acls: 0, states: 0, ledger_resets: 0, skipped: 0 };
}

function sourceState(row: SourceRow | undefined): SourceState {
  if (!row) return { kind: 'unknown' };
  if (row.status === 'active') return { kind: 'active', version: row.version, acl_version: row.acl_version };
  if (row.status === 'hard_deleted') return { kind: 'tombstone', version: row.version, acl_version: row.acl_version };
  return { kind: 'inactive', version: row.version, acl_version: row.acl_version, status: row.status };
}

const keyOf = (r: { tenant_id: string; document_id: string }) => `${r.tenant_id}:${r.document_id}`;

/** Plans and applies repairs for one batch of documents in one transaction; returns what it did. */
export async function repairBatch(pool: pg.Pool, target: RepairTarget, items: RepairItem[]): Promise<RepairCounts> {
  const counts = emptyRepairCounts();
  if (items.length === 0) return counts;
  // One plan per document: merge what was found about it (sink kinds, state topic).
  const merged = new Map<string, RepairItem>();
  for (const item of items) {
    const prev = merged.get(keyOf(item));
    merged.set(
      keyOf(item),
      prev
        ? {
            ...prev,
            kinds: [...new Set([...prev.kinds, ...item.kinds])],
            stateTopic: prev.stateTopic ?? item.stateTopic,
            sinkChunkEnd: Math.max(prev.sinkChunkEnd ?? 0, item.sinkChunkEnd ?? 0) || undefined,
          }
        : item,
    );
  }
  const unique = [...merged.values()];
  const tenants = unique.map((i) => i.tenant_id);
  const documents = unique.map((i) => i.document_id);
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw classifyPgError(error, 'source database (repair)');
  }
  try {
    await client.query('BEGIN');
    // Exactly as the writer and the propagator do (services/ledger): placeholder rows first (they read
    // as "no row" to the guard), then every row locked, both in key order, so no deadlock with them.
    await client.query(
      `INSERT INTO vecsync.sync_state (sink_name, tenant_id, document_id, model_key, version, acl_version, chunk_count, tombstone)
       SELECT $1, t, d, $2, 0, 0, 0, false FROM unnest($3::text[], $4::text[]) AS u(t, d)
       ORDER BY t, d
       ON CONFLICT DO NOTHING`,
      [target.sinkName, target.modelKey, tenants, documents],
    );
    const locked = await client.query<{
      tenant_id: string;
      document_id: string;
      version: string;
      acl_version: string;
      tombstone: boolean;
      chunk_count: number;
    }>(
      `SELECT s.tenant_id, s.document_id, s.version, s.acl_version, s.tombstone, s.chunk_count
         FROM vecsync.sync_state s
         JOIN unnest($3::text[], $4::text[]) AS u(t, d) ON s.tenant_id = u.t AND s.document_id = u.d
        WHERE s.sink_name = $1 AND s.model_key = $2
        ORDER BY s.tenant_id, s.document_id, s.model_key
          FOR UPDATE OF s`,
      [target.sinkName, target.modelKey, tenants, documents],
    );
    const ledger = new Map<string, LedgerRegisters>(
      locked.rows.map((r) => [
        keyOf(r),
        {
          version: Number(r.version),
          acl_version: Number(r.acl_version),
          tombstone: r.tombstone,
          chunk_count: r.chunk_count,
        },
      ]),
    );
    // The cutoff does not matter here: only the current state is used.
    const source = await sourceByKeys(client, unique, 'infinity', {
      sinkName: target.sinkName,
      modelKey: target.modelKey,
    });
    const plans: { item: RepairItem; action: RepairAction; source: SourceRow | undefined }[] = unique.map((item) => {
      const row = source.get(keyOf(item));
      return {
        item,
        source: row,
        action: planRepair(item, sourceState(row), ledger.get(keyOf(item)), { canUpsert: target.model !== null }),
      };
    });

    const resets = plans.filter((p) => p.action.ledger !== null);
    if (resets.length > 0) {
      await client.query(
        `UPDATE vecsync.sync_state s
            SET version = coalesce(u.v, s.version), acl_version = coalesce(u.av, s.acl_version),
                tombstone = coalesce(u.tomb, s.tombstone), chunk_count = coalesce(u.cc, s.chunk_count)
           FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bool[], $8::int[]) AS u(t, d, v, av, tomb, cc)
          WHERE s.sink_name = $1 AND s.model_key = $2 AND s.tenant_id = u.t AND s.document_id = u.d`,
        [
          target.sinkName,
          target.modelKey,
          resets.map((p) => p.item.tenant_id),
          resets.map((p) => p.item.document_id),
          resets.map((p) => p.action.ledger!.version ?? null),
          resets.map((p) => p.action.ledger!.acl_version ?? null),
          resets.map((p) => p.action.ledger!.tombstone ?? null),
          resets.map((p) => p.action.ledger!.chunk_count ?? null),
        ],
      );
      counts.ledger_resets = resets.length;
    }

    const pick = (f: (a: RepairAction) => boolean) => plans.filter((p) => f(p.action));
    const documentsOf = (list: typeof plans) => [
      list.map((p) => p.item.tenant_id),
      list.map((p) => p.item.document_id),
    ];
    const fromDocuments = (call: string, list: typeof plans, extra: unknown[] = []) =>
      list.length === 0
        ? Promise.resolve()
        : client.query(
            `SELECT ${call} FROM vecsync.documents d
               JOIN unnest($1::text[], $2::text[]) AS u(t, doc) ON d.tenant_id = u.t AND d.document_id = u.doc
              ORDER BY d.tenant_id, d.document_id`,
            [...documentsOf(list), ...extra],
          );

    const upserts = pick((a) => a.upsert);
    if (target.model && upserts.length > 0) {
      await fromDocuments(`vecsync.enqueue_upsert(d, 'bulk', $3, $4)`, upserts, [
        target.model.name,
        target.model.version,
      ]);
      counts.upserts = upserts.length;
    }
    const acls = pick((a) => a.acl);
    await fromDocuments('vecsync.enqueue_acl(d)', acls);
    counts.acls = acls.length;
    const deletes = pick((a) => a.delete !== null);
    if (deletes.length > 0) {
      await client.query(
        `SELECT vecsync.enqueue_delete(u.t, u.d, u.v, u.av, u.reason)
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY AS u(t, d, v, av, reason, n)
          ORDER BY u.n`,
        [
          ...documentsOf(deletes),
          deletes.map((p) => p.action.delete!.version),
          deletes.map((p) => p.action.delete!.acl_version),
          deletes.map((p) => p.action.delete!.reason),
        ],
      );
      counts.deletes = deletes.length;
    }
    const current = pick((a) => a.state?.kind === 'current');
    await fromDocuments('vecsync.append_state(d)', current);
    const deletedStates = plans.filter((p) => p.action.state?.kind === 'deleted');
    if (deletedStates.length > 0) {
      await client.query(
        `SELECT vecsync.append_deleted_state(u.t, u.d, u.v, u.av)
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(t, d, v, av, n)
          ORDER BY u.n`,
        [
          ...documentsOf(deletedStates),
          deletedStates.map((p) => (p.action.state as { version: number }).version),
          deletedStates.map((p) => (p.action.state as { acl_version: number }).acl_version),
        ],
      );
    }
    counts.states = current.length + deletedStates.length;
    counts.skipped = plans.filter((p) => p.action.skipped !== null).length;
    await client.query('COMMIT');
    return counts;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw classifyPgError(error, 'source database (repair)');
  } finally {
    client.release();
  }
}

export function addRepairCounts(into: RepairCounts, more: RepairCounts): void {
  for (const k of Object.keys(into) as (keyof RepairCounts)[]) into[k] += more[k];
}
