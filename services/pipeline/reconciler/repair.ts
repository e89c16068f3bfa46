/**
 * Executes repair plans (see plan.ts): one source transaction per batch that locks the ledger rows
 * of the batch through the same ledger API as the writer and the propagator (in key order, so no
 * deadlock with them), re-reads the documents, plans, resets the ledger registers and enqueues
 * the outbox events with the SQL helpers every other producer of events uses
 * (`vecsync.enqueue_upsert`, `enqueue_delete`, `enqueue_acl`, `append_state`, `append_deleted_state`).
 * The events then travel the normal path: Debezium, the lanes, the embedder, the writer and the
 * propagator, under the version guard.
 */
import type pg from 'pg';
import { Ledger, ledgerKeyString } from '../../adapters/postgres/ledger.ts';
import { planRepair, type RepairAction, type RepairItem, type SourceState } from './plan.ts';
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
  const ledger = new Ledger(pool, target.sinkName);
  const keys = unique.map((i) => ({ tenantId: i.tenant_id, documentId: i.document_id, modelKey: target.modelKey }));
  // The same lock as the writer and the propagator: the ledger rows, in key order.
  return ledger.withLocked(keys, async (rows, tx) => {
    const registersOf = (item: RepairItem) =>
      rows.get(ledgerKeyString({ tenantId: item.tenant_id, documentId: item.document_id, modelKey: target.modelKey }));
    // The cutoff does not matter here: only the current state is used.
    const source = await sourceByKeys(tx, unique, 'infinity', {
      sinkName: target.sinkName,
      modelKey: target.modelKey,
    });
    const plans: { item: RepairItem; action: RepairAction; source: SourceRow | undefined }[] = unique.map((item) => {
      const row = source.get(keyOf(item));
      return {
        item,
        source: row,
        action: planRepair(item, sourceState(row), registersOf(item), { canUpsert: target.model !== null }),
      };
    });

    const resets = plans.filter((p) => p.action.ledger !== null);
    await tx.reset(
      resets.map((p) => ({
        tenantId: p.item.tenant_id,
        documentId: p.item.document_id,
        modelKey: target.modelKey,
        ...p.action.ledger,
      })),
    );
    counts.ledger_resets = resets.length;

    const pick = (f: (a: RepairAction) => boolean) => plans.filter((p) => f(p.action));
    const documentsOf = (list: typeof plans) => [
      list.map((p) => p.item.tenant_id),
      list.map((p) => p.item.document_id),
    ];
    const fromDocuments = (call: string, list: typeof plans, extra: unknown[] = []) =>
      list.length === 0
        ? Promise.resolve()
        : tx.query(
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
      await tx.query(
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
      await tx.query(
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
    return counts;
  });
}

export function addRepairCounts(into: RepairCounts, more: RepairCounts): void {
  for (const k of Object.keys(into) as (keyof RepairCounts)[]) into[k] += more[k];
}
