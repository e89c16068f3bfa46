/**
 * The propagator's pure planning step for the priority lane (deletes and ACL changes). Each event
 * applies to every live model's index. Because the guard's registers only move forward, the sink
 * action follows from comparing the final ledger row with the locked one: a new tombstone removes
 * the chunks, a newer ACL on a live document rewrites the ACL (never the embeddings).
 */
import type { AclEvent, DeleteEvent } from '../../domain/types.ts';
import { ledgerKeyString, type LedgerKey, type LedgerRow } from '../../adapters/postgres/ledger.ts';
import type { AclWrite, DocumentRef } from '../../adapters/sinks/types.ts';
import { EMPTY_LEDGER, guard } from '../../domain/transforms/version-guard.ts';

export type PriorityEvent = DeleteEvent | AclEvent;

export interface PropagatorPlan {
  deletes: Map<string, { item: DocumentRef; key: string }[]>;
  aclWrites: Map<string, { item: AclWrite; key: string }[]>;
  next: Map<string, LedgerRow>;
  /** Per event: applied (moved the ledger for at least one model) or skipped. */
  results: ('applied' | 'skipped')[];
}

export function ledgerKeysFor(events: PriorityEvent[], modelKeys: string[]): LedgerKey[] {
  return events.flatMap((e) =>
    modelKeys.map((modelKey) => ({ tenantId: e.tenant_id, documentId: e.document_id, modelKey })),
  );
}

export function planPropagatorBatch(
  events: PriorityEvent[],
  modelKeys: string[],
  rows: Map<string, LedgerRow>,
): PropagatorPlan {
  const plan: PropagatorPlan = {
    deletes: new Map(),
    aclWrites: new Map(),
    next: new Map(),
    results: events.map(() => 'skipped'),
  };
  const byDocument = new Map<string, number[]>();
  events.forEach((e, i) => {
    const doc = `${e.tenant_id}:${e.document_id}`;
    byDocument.set(doc, [...(byDocument.get(doc) ?? []), i]);
  });
  for (const indexes of byDocument.values()) {
    const first = events[indexes[0]!]!;
    for (const modelKey of modelKeys) {
      const ledgerKey: LedgerKey = { tenantId: first.tenant_id, documentId: first.document_id, modelKey };
      const key = ledgerKeyString(ledgerKey);
      const start: LedgerRow = rows.get(key) ?? {
        ...ledgerKey,
        ...EMPTY_LEDGER,
        acl: [],
        chunkCount: 0,
        contentHash: null,
      };
      let row = start;
      for (const i of indexes) {
        const event = events[i]!;
        const decision = guard(row, event.op === 'delete' ? { op: 'delete', version: event.version } : event);
        if (decision.ledgerChanged) {
          row = { ...row, ...decision.next };
          plan.results[i] = 'applied';
        }
      }
      if (row === start) continue;
      if (row.tombstone) row = { ...row, chunkCount: 0, contentHash: null };
      plan.next.set(key, row);
      const ref = { tenantId: row.tenantId, documentId: row.documentId };
      if (row.tombstone && (!start.tombstone || row.version > start.version)) {
        // The delete's versions: a fencing sink keeps them as a tombstone against late older writes.
        push(plan.deletes, modelKey, { key, item: { ...ref, version: row.version, aclVersion: row.acl_version } });
      } else if (!row.tombstone && row.acl_version > start.acl_version) {
        push(plan.aclWrites, modelKey, {
          key,
          item: {
            ...ref,
            principals: [...row.acl],
            aclVersion: row.acl_version,
            chunkCount: row.chunkCount,
            // Each model's index holds its own number of chunks (see groupAcrossModels' merge).
            chunkCounts: { [modelKey]: row.chunkCount },
          },
        });
      }
    }
  }
  return plan;
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Sink calls for one set of models: each entry is one document, with its ledger keys in those models. */
export interface ModelGroup<T> {
  models: string[];
  entries: { keys: string[]; item: T }[];
}

/**
 * Regroups per-model work into as few sink calls as possible: a delete or ACL change usually
 * touches the same document in every live model, and one call can cover all of its indexes.
 */
export function groupAcrossModels<T>(
  perModel: Map<string, { key: string; item: T }[]>,
  documentOf: (item: T) => string,
  /** Folds one model's item into the document's (default: the first model's item stands for all). */
  merge: (kept: T, next: T) => T = (kept) => kept,
): ModelGroup<T>[] {
  const byDocument = new Map<string, { models: string[]; keys: string[]; item: T }>();
  for (const [modelKey, items] of perModel) {
    for (const { key, item } of items) {
      const doc = documentOf(item);
      const entry = byDocument.get(doc);
      if (entry) {
        entry.models.push(modelKey);
        entry.keys.push(key);
        entry.item = merge(entry.item, item);
      } else byDocument.set(doc, { models: [modelKey], keys: [key], item });
    }
  }
  const groups = new Map<string, ModelGroup<T>>();
  for (const { models, keys, item } of byDocument.values()) {
    const sorted = [...models].sort();
    const id = sorted.join('\n');
    const group = groups.get(id) ?? { models: sorted, entries: [] };
    group.entries.push({ keys, item });
    groups.set(id, group);
  }
  return [...groups.values()];
}
