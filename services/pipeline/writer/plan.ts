/**
 * The writer's pure planning step: given one slice of chunk records and the locked ledger rows,
 * decide the sink writes and the next ledger rows. Records of one document are folded through the
 * version guard in version order, so a slice holding several versions writes only the newest.
 */
import type { DocumentChunks } from '../../domain/types.ts';
import { ledgerKeyString, type LedgerKey, type LedgerRow } from '../../adapters/postgres/ledger.ts';
import type { AclWrite, DocumentWrite } from '../../adapters/sinks/types.ts';
import { EMPTY_LEDGER, guard, GuardAction } from '../../domain/transforms/version-guard.ts';

export interface WriterPlan {
  /** Per model key: the documents whose chunks are (re)written. */
  writes: Map<string, { write: DocumentWrite; key: string }[]>;
  /** Per model key: documents whose content is current but whose ACL moved forward. */
  aclWrites: Map<string, { write: AclWrite; key: string }[]>;
  /** Next ledger row per ledger key, for rows that changed. */
  next: Map<string, LedgerRow>;
  /** Per input record: applied (it changed the sink or the ledger) or skipped (older or duplicate). */
  results: ('applied' | 'skipped')[];
}

export function ledgerKeyOf(record: DocumentChunks): LedgerKey {
  return { tenantId: record.tenant_id, documentId: record.document_id, modelKey: record.model_key };
}

export function toDocumentWrite(record: DocumentChunks, acl: readonly string[], aclVersion: number): DocumentWrite {
  return {
    tenantId: record.tenant_id,
    documentId: record.document_id,
    documentVersion: record.document_version,
    chunkCount: record.chunk_count,
    contentHash: record.content_hash,
    title: record.title ?? '',
    metadata: record.metadata,
    chunks: record.chunks.map((c) => ({
      index: c.chunk_index,
      content: c.content,
      contentHash: c.content_hash,
      embedding: c.embedding instanceof Float32Array ? c.embedding : Float32Array.from(c.embedding),
    })),
    acl: { principals: [...acl], aclVersion },
  };
}

export function planWriterBatch(records: DocumentChunks[], rows: Map<string, LedgerRow>): WriterPlan {
  const plan: WriterPlan = {
    writes: new Map(),
    aclWrites: new Map(),
    next: new Map(),
    results: records.map(() => 'skipped'),
  };
  const byKey = new Map<string, number[]>();
  records.forEach((record, i) => {
    const key = ledgerKeyString(ledgerKeyOf(record));
    byKey.set(key, [...(byKey.get(key) ?? []), i]);
  });
  for (const [key, indexes] of byKey) {
    const first = records[indexes[0]!]!;
    const start: LedgerRow = rows.get(key) ?? {
      ...ledgerKeyOf(first),
      ...EMPTY_LEDGER,
      acl: [],
      chunkCount: 0,
      contentHash: null,
    };
    let row = start;
    let content: DocumentChunks | undefined;
    let aclMoved = false;
    const ordered = [...indexes].sort((a, b) => records[a]!.document_version - records[b]!.document_version);
    for (const i of ordered) {
      const record = records[i]!;
      const decision = guard(row, {
        op: 'upsert',
        version: record.document_version,
        acl_version: record.acl_version,
        acl: record.acl,
      });
      if (decision.action === GuardAction.writeChunks) {
        content = record;
        row = { ...row, ...decision.next, chunkCount: record.chunk_count, contentHash: record.content_hash };
      } else {
        if (decision.action === GuardAction.writeAcl) aclMoved = true;
        if (decision.ledgerChanged) row = { ...row, ...decision.next };
      }
      if (decision.action !== GuardAction.skip || decision.ledgerChanged) plan.results[i] = 'applied';
    }
    if (row !== start) plan.next.set(key, row);
    const modelKey = first.model_key;
    if (content) {
      // The chunk count the sink held before: sinks without transactions prune `chunkCount..previous-1` by id.
      const write = { ...toDocumentWrite(content, row.acl, row.acl_version), previousChunkCount: start.chunkCount };
      push(plan.writes, modelKey, { key, write });
    } else if (aclMoved) {
      push(plan.aclWrites, modelKey, {
        key,
        write: {
          tenantId: row.tenantId,
          documentId: row.documentId,
          principals: [...row.acl],
          aclVersion: row.acl_version,
          chunkCount: row.chunkCount,
        },
      });
    }
  }
  return plan;
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
