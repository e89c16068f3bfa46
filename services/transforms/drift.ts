/**
 * Drift: the difference between what the sink should hold (the state topic plus the ledger's
 * chunk counts) and what it holds. Pure; the reconciler feeds it and prints `reconcile --json`.
 *
 * Kinds (each counted per document, except `orphan_chunks`, which counts chunks):
 * - `missing`: should be searchable and has chunks to hold, but the sink has none;
 * - `ghost`: the sink holds chunks of a document that is deleted or unknown;
 * - `stale`: the sink holds another content version than the source (behind, or ahead);
 * - `acl_mismatch`: the sink's ACL differs from the source's;
 * - `orphan_chunks`: chunks with an index at or past the chunk count (left from a longer version);
 * - `count_mismatch`: a chunk index below the chunk count is absent.
 * The two count checks only run when the versions agree: counts belong to one version.
 */
import { createHash } from 'node:crypto';
import { normalizeAcl, sameAcl } from './acl.ts';

/** What the sink should hold for one document. */
export interface ExpectedDocument {
  tenant_id: string;
  document_id: string;
  version: number;
  acl_version: number;
  acl: readonly string[];
  /** Not searchable (hard delete, deleted, archived): the sink must hold no chunk of it. */
  deleted: boolean;
  /** Chunks of `version` (from the ledger); 0 for an empty body. */
  chunk_count: number;
}

/** What the sink holds for one document (built from its chunks). */
export interface SinkDocument {
  tenant_id: string;
  document_id: string;
  /** `document_version` of its chunks (the lowest, if they disagree). */
  version: number;
  acl: readonly string[];
  chunk_indexes: readonly number[];
}

export const DriftKind = {
  missing: 'missing',
  ghost: 'ghost',
  stale: 'stale',
  aclMismatch: 'acl_mismatch',
  orphanChunks: 'orphan_chunks',
  countMismatch: 'count_mismatch',
} as const;
export type DriftKind = (typeof DriftKind)[keyof typeof DriftKind];
export type DriftCounts = Record<DriftKind, number>;

export interface DriftReport {
  /** Totals over every tenant. */
  drift: DriftCounts;
  /** Per tenant, for every tenant seen on either side. */
  tenants: Record<string, DriftCounts>;
  /** Up to `sampleSize` document keys (`tenant:document`) per kind, for drill-down. */
  samples: Record<DriftKind, string[]>;
}

export function emptyCounts(): DriftCounts {
  return { missing: 0, ghost: 0, stale: 0, acl_mismatch: 0, orphan_chunks: 0, count_mismatch: 0 };
}

/** Compares expected and sink state; every document appears at most once on each side. */
export function diffDrift(
  expected: Iterable<ExpectedDocument>,
  sink: Iterable<SinkDocument>,
  options: { sampleSize?: number } = {},
): DriftReport {
  const sampleSize = options.sampleSize ?? 10;
  const report: DriftReport = { drift: emptyCounts(), tenants: {}, samples: emptySamples() };
  const record = (tenant: string, key: string, kind: DriftKind, amount = 1): void => {
    report.drift[kind] += amount;
    tenantCounts(report, tenant)[kind] += amount;
    if (report.samples[kind].length < sampleSize) report.samples[kind].push(key);
  };

  const held = new Map<string, SinkDocument>();
  for (const doc of sink) {
    if (doc.chunk_indexes.length > 0) held.set(keyOf(doc), doc);
    tenantCounts(report, doc.tenant_id);
  }
  for (const want of expected) {
    const key = keyOf(want);
    tenantCounts(report, want.tenant_id);
    const have = held.get(key);
    held.delete(key);
    for (const [kind, amount] of compareDocument(want, have)) record(want.tenant_id, key, kind, amount);
  }
  // Whatever the sink holds that nobody expects.
  for (const [key, doc] of held) record(doc.tenant_id, key, DriftKind.ghost);
  return report;
}

/** Drift kinds of one document, with their amounts. */
function compareDocument(want: ExpectedDocument, have: SinkDocument | undefined): [DriftKind, number][] {
  if (want.deleted) return have ? [[DriftKind.ghost, 1]] : [];
  if (!have) return want.chunk_count > 0 ? [[DriftKind.missing, 1]] : [];
  const found: [DriftKind, number][] = [];
  if (!sameAcl(want.acl, have.acl)) found.push([DriftKind.aclMismatch, 1]);
  if (have.version !== want.version) return [[DriftKind.stale, 1], ...found];
  const indexes = new Set(have.chunk_indexes);
  const orphans = [...indexes].filter((i) => i >= want.chunk_count).length;
  if (orphans > 0) found.push([DriftKind.orphanChunks, orphans]);
  for (let i = 0; i < want.chunk_count; i++) {
    if (!indexes.has(i)) {
      found.push([DriftKind.countMismatch, 1]);
      break;
    }
  }
  return found;
}

function keyOf(doc: { tenant_id: string; document_id: string }): string {
  return `${doc.tenant_id}:${doc.document_id}`;
}

function tenantCounts(report: DriftReport, tenant: string): DriftCounts {
  return (report.tenants[tenant] ??= emptyCounts());
}

function emptySamples(): Record<DriftKind, string[]> {
  return { missing: [], ghost: [], stale: [], acl_mismatch: [], orphan_chunks: [], count_mismatch: [] };
}

// ---------------------------------------------------------------------------------------------
// Bucketed checksums: compare millions of documents by exchanging a few hashes per tenant, then
// list only the buckets that differ.
// ---------------------------------------------------------------------------------------------

/** The fields a checksum covers. Only searchable (expected) or present (sink) documents go in. */
export interface ChecksumDocument {
  tenant_id: string;
  document_id: string;
  version: number;
  acl: readonly string[];
}

/**
 * The bucket of a document: the first 32 bits of md5(`tenant:document`) modulo `buckets`.
 * Computable in SQL, so a sink can be asked for one bucket:
 * `('x' || substr(md5(tenant_id || ':' || document_id), 1, 8))::bit(32)::bigint % <buckets>`.
 */
export function bucketOf(tenantId: string, documentId: string, buckets: number): number {
  const digest = createHash('md5').update(`${tenantId}:${documentId}`, 'utf8').digest();
  return digest.readUInt32BE(0) % buckets;
}

/** 64-bit hash of one document's identity, version and normalized ACL. */
export function documentChecksum(doc: ChecksumDocument): bigint {
  const text = [doc.tenant_id, doc.document_id, String(doc.version), ...normalizeAcl(doc.acl)].join('\u0000');
  return createHash('sha256').update(text, 'utf8').digest().readBigUInt64BE(0);
}

/**
 * Per tenant, one checksum per bucket (16 hex digits): the XOR of its documents' checksums, so
 * the order documents are read in does not matter. An empty bucket is all zeros.
 */
export function bucketChecksums(docs: Iterable<ChecksumDocument>, buckets = 64): Record<string, string[]> {
  const sums = new Map<string, bigint[]>();
  for (const doc of docs) {
    let tenant = sums.get(doc.tenant_id);
    if (!tenant) sums.set(doc.tenant_id, (tenant = new Array<bigint>(buckets).fill(0n)));
    const b = bucketOf(doc.tenant_id, doc.document_id, buckets);
    tenant[b] = tenant[b]! ^ documentChecksum(doc);
  }
  const out: Record<string, string[]> = {};
  for (const [tenant, values] of sums) out[tenant] = values.map((v) => v.toString(16).padStart(16, '0'));
  return out;
}

/** The (tenant, bucket) pairs whose checksums differ, a tenant missing on one side counting as empty. */
export function differingBuckets(
  a: Record<string, string[]>,
  b: Record<string, string[]>,
): { tenant_id: string; bucket: number }[] {
  const out: { tenant_id: string; bucket: number }[] = [];
  for (const tenant of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const left = a[tenant] ?? [];
    const right = b[tenant] ?? [];
    const width = Math.max(left.length, right.length);
    for (let bucket = 0; bucket < width; bucket++) {
      if (BigInt(`0x${left[bucket] ?? '0'}`) !== BigInt(`0x${right[bucket] ?? '0'}`))
        out.push({ tenant_id: tenant, bucket });
    }
  }
  return out;
}
