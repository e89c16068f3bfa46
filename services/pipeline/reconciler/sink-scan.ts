/**
 * The sink's side: its documents come through the generic `Sink.listDocuments` stream (every sink
 * type has it), one page at a time, and are folded into per-bucket checksums as they pass. Memory
 * is one page plus the tenant's buckets.
 */
import type { IndexSpec, Sink, StoredDocument } from '../../adapters/sinks/types.ts';
import {
  bucketOf,
  DigestBuckets,
  sinkDocumentDigest,
  type Digest64,
  type SinkDocument,
} from '../../domain/transforms/drift.ts';

export interface SinkSums {
  held: DigestBuckets;
  documents: number;
}

export function toSinkDocument(tenantId: string, doc: StoredDocument): SinkDocument {
  return {
    tenant_id: tenantId,
    document_id: doc.documentId,
    version: doc.documentVersion,
    acl: doc.acl,
    chunk_indexes: doc.chunkIndexes,
  };
}

/** One pass over a tenant's documents in the sink, folded into `buckets` checksums. */
export async function sinkBucketSums(
  sink: Sink,
  index: IndexSpec,
  tenantId: string,
  buckets: number,
  signal?: AbortSignal,
): Promise<SinkSums> {
  const sums: SinkSums = { held: new DigestBuckets(buckets), documents: 0 };
  const principals = new Map<string, Digest64>();
  for await (const stored of sink.listDocuments(index, tenantId)) {
    if (stored.chunkIndexes.length === 0) continue;
    const doc = toSinkDocument(tenantId, stored);
    const b = bucketOf(tenantId, doc.document_id, buckets);
    sums.held.add(b, sinkDocumentDigest(doc, principals));
    sums.documents++;
    if (signal?.aborted && sums.documents % 1000 === 0) throw signal.reason;
  }
  return sums;
}

/**
 * The tenant's sink documents that fall into `bucketIds`, streamed. The sink is asked for these
 * buckets only (pgvector filters in SQL, Pinecone before fetching), so a drill-down reads about
 * as many documents as the differing buckets hold, not the tenant again; the filter is applied
 * here once more, for a sink that returns more.
 */
export async function* sinkDetail(
  sink: Sink,
  index: IndexSpec,
  tenantId: string,
  buckets: number,
  bucketIds: ReadonlySet<number>,
): AsyncGenerator<SinkDocument> {
  const ids = [...bucketIds].sort((a, b) => a - b);
  for await (const stored of sink.listDocuments(index, tenantId, { buckets: { count: buckets, ids } })) {
    if (stored.chunkIndexes.length === 0) continue;
    if (!bucketIds.has(bucketOf(tenantId, stored.documentId, buckets))) continue;
    yield toSinkDocument(tenantId, stored);
  }
}
