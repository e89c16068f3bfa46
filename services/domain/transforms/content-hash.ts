/**
 * Content hashes. A chunk's hash keys the embedding cache (with the model key); a document's
 * hash lets the ledger, the state topic and the reconciler tell whether the embedded content
 * changed without comparing bodies.
 */
import { createHash } from 'node:crypto';

/** sha256 of the UTF-8 bytes of `text`, as lowercase hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Hash of a document's content: its title and body, as `vecsync.content_hash(title, body)` computes
 * it in the source database for the upsert payload and the state topic, so that the ledger, the
 * state topic and the reconciler compare one value. A missing title or body counts as empty.
 *
 * Only the body is chunked and embedded (the title travels as metadata): a title-only change
 * changes this hash but no chunk hash, so nothing is re-embedded.
 *
 * SQL equivalent: `encode(sha256(convert_to(coalesce(title, '') || E'\n' || coalesce(body, ''), 'UTF8')), 'hex')`.
 */
export function documentContentHash(title: string | null, body: string | null): string {
  return sha256Hex(`${title ?? ''}\n${body ?? ''}`);
}
