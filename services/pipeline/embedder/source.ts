/**
 * The embedder's read of the document itself (claim check): outbox upsert payloads carry versions,
 * the content hash and sizes, never the body, title, metadata or ACL, so that no document can
 * produce a change-capture record too large for Kafka. The embedder reads those columns here, one
 * query per slice, and a body or metadata over its limit is never fetched at all: its size decides.
 */
import type pg from 'pg';
import { classifyPgError } from '../../domain/pg-errors.ts';
import { prepared } from '../../adapters/postgres/pool.ts';
import type { JsonValue } from '../../domain/types.ts';

export interface SourceDocument {
  tenantId: string;
  documentId: string;
  version: number;
  aclVersion: number;
  status: string;
  title: string | null;
  /** null when the body is over the limit (only its size was read). */
  body: string | null;
  bodyBytes: number;
  /** Allowlisted metadata; null when over the limit. */
  metadata: { [key: string]: JsonValue } | null;
  metadataBytes: number;
  acl: string[];
  /** `vecsync.content_hash(title, body)`, computed in the source even when the body is not read. */
  contentHash: string;
}

export interface SourceLimits {
  maxBodyBytes: number;
  maxMetadataBytes: number;
}

const QUERY = `
  SELECT d.tenant_id, d.document_id, d.version, d.acl_version, d.status, d.title,
         coalesce(octet_length(d.body), 0) AS body_bytes,
         CASE WHEN coalesce(octet_length(d.body), 0) <= $3 THEN coalesce(d.body, '') END AS body,
         m.bytes AS metadata_bytes,
         CASE WHEN m.bytes <= $4 THEN m.metadata END AS metadata,
         vecsync.current_acl(d.tenant_id, d.document_id) AS acl,
         vecsync.content_hash(d.title, d.body) AS content_hash
    FROM unnest($1::text[], $2::text[]) AS k(tenant_id, document_id)
    JOIN vecsync.documents d USING (tenant_id, document_id)
   CROSS JOIN LATERAL (SELECT vecsync.allowed_metadata(d.metadata) AS metadata) a
   CROSS JOIN LATERAL (SELECT a.metadata, octet_length(a.metadata::text) AS bytes) m`;

interface Row {
  tenant_id: string;
  document_id: string;
  version: string;
  acl_version: string;
  status: string;
  title: string | null;
  body_bytes: number;
  body: string | null;
  metadata_bytes: number;
  metadata: { [key: string]: JsonValue } | null;
  acl: string[];
  content_hash: string;
}

export const sourceKey = (tenantId: string, documentId: string): string => `${tenantId}:${documentId}`;

/** The documents of `keys` as they are now, by `tenant:document`; absent keys were hard-deleted. */
export async function readDocuments(
  pool: pg.Pool,
  keys: { tenantId: string; documentId: string }[],
  limits: SourceLimits,
): Promise<Map<string, SourceDocument>> {
  const out = new Map<string, SourceDocument>();
  if (keys.length === 0) return out;
  let rows: Row[];
  try {
    ({ rows } = await pool.query<Row>({
      ...prepared(QUERY),
      values: [
        keys.map((k) => k.tenantId),
        keys.map((k) => k.documentId),
        limits.maxBodyBytes,
        limits.maxMetadataBytes,
      ],
    }));
  } catch (error) {
    throw classifyPgError(error, 'document read');
  }
  for (const r of rows) {
    out.set(sourceKey(r.tenant_id, r.document_id), {
      tenantId: r.tenant_id,
      documentId: r.document_id,
      version: Number(r.version),
      aclVersion: Number(r.acl_version),
      status: r.status,
      title: r.title,
      body: r.body,
      bodyBytes: Number(r.body_bytes),
      metadata: r.metadata,
      metadataBytes: Number(r.metadata_bytes),
      acl: r.acl,
      contentHash: r.content_hash,
    });
  }
  return out;
}
