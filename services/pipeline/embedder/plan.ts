/**
 * What the embedder does with one upsert event, given the document as the source holds it now
 * (pure: tested without a database). The event carries versions only; the source row is the text.
 */
import { PoisonMessageError } from '../../domain/errors.ts';
import type { UpsertEvent } from '../../domain/types.ts';
import type { SourceDocument, SourceLimits } from './source.ts';

export type EmbedDecision =
  /** Chunk and embed `doc` (its version is the event's). */
  | { kind: 'embed'; doc: SourceDocument }
  /** The source moved on (newer version, deleted, archived): a later event says what to do. */
  | { kind: 'skip'; why: string }
  /**
   * The document can never be embedded as it is (over a size limit): take it out of search (a
   * chunk record with no chunks and no principals) and dead-letter the event with `error.reason`.
   */
  | { kind: 'withdraw'; doc: SourceDocument; error: PoisonMessageError };

export function decide(event: UpsertEvent, doc: SourceDocument | undefined, limits: SourceLimits): EmbedDecision {
  if (!doc) return { kind: 'skip', why: 'document no longer exists (a delete event follows)' };
  if (doc.version > event.version) return { kind: 'skip', why: `source is at version ${doc.version}` };
  if (doc.version < event.version) {
    // The source cannot be behind its own outbox; a read from a lagging replica could be.
    throw new PoisonMessageError('version_ahead_of_source', `event version ${event.version} > source ${doc.version}`);
  }
  if (doc.status !== 'active') return { kind: 'skip', why: `document is ${doc.status}` };
  if (doc.bodyBytes > limits.maxBodyBytes || doc.body === null) {
    return {
      kind: 'withdraw',
      doc,
      error: new PoisonMessageError(
        'body_too_large',
        `body of ${doc.bodyBytes} bytes exceeds VECSYNC_MAX_BODY_BYTES=${limits.maxBodyBytes}`,
      ),
    };
  }
  if (doc.metadataBytes > limits.maxMetadataBytes || doc.metadata === null) {
    return {
      kind: 'withdraw',
      doc,
      error: new PoisonMessageError(
        'metadata_too_large',
        `allowlisted metadata of ${doc.metadataBytes} bytes exceeds VECSYNC_MAX_METADATA_BYTES=${limits.maxMetadataBytes}`,
      ),
    };
  }
  return { kind: 'embed', doc };
}
