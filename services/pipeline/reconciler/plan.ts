/**
 * The repair plan: pure. Given what the reconciler found wrong with a document, its current source
 * state and its locked ledger row, decide which outbox events to enqueue and how the ledger row must
 * be reset so that the version guard lets exactly those events through.
 *
 * ## Why the ledger is reset (and repair events are ordinary events)
 *
 * Repair events carry the document's *current* source versions, which the ledger has usually
 * recorded already: that is what drift is, the ledger says the sink holds version v (or v's
 * tombstone, or ACL version a) and the sink does not. The guard would skip such an event as a
 * duplicate. Rather than teaching the writer and the propagator a "forced" event kind (a second
 * rule next to the guard), the repair moves the ledger's register back to what the sink actually
 * holds, by the smallest step that makes the repair event win, inside the same source transaction
 * and under the same row lock the writer and the propagator take:
 *
 * - content repair (missing, stale, orphan chunks) at source version v: if the ledger holds v or
 *   more, or a tombstone, it is set to min(its version, v − 1), not tombstoned; the upsert of v then
 *   applies.
 * - ghost of a deleted or archived document (version v) or a hard-deleted one (tombstone v): if the
 *   ledger holds v's tombstone, or more, it is set to (v, not tombstoned); the delete of v wins the
 *   tie (a delete beats an upsert of the same version) and leaves the tombstone at v again.
 * - ghost of a document the source never had: a delete at version 0, the ledger set to (0, not
 *   tombstoned) when it holds anything else. The tombstone at 0 blocks nothing: a document created
 *   later starts at version 1.
 * - ACL mismatch at source ACL version a: if the ledger's ACL version is a or more, it is set to
 *   a − 1 (the ACL itself is left); the ACL event of a then applies. The ledger's ACL is only read
 *   again by an event with a newer ACL version, which brings its own ACL.
 * - content repair where the sink was seen holding chunks up to index e − 1 beyond the ledger's
 *   chunk count: the chunk count is raised to e. The writer hands it to the sink as the previous
 *   chunk count, and sinks that prune by id (Pinecone) then remove the orphans too.
 *
 * The guard's registers still only move forward from the reset point, and the reset point is one
 * step below the repair event, so nothing older than the repair event can apply (a duplicate of
 * v − 1 at most, which the repair event then overrides). The ledger stays "never ahead of the
 * sink": the reset makes it agree with the sink the reconciler observed.
 *
 * State-topic repairs publish the current truth again (`append_state`/`append_deleted_state`); no
 * guard reads the state topic.
 */
import { DriftKind } from '../../domain/transforms/drift.ts';
import type { LedgerRow } from '../../adapters/postgres/ledger.ts';

/** The source's current state of one document, as read inside the repair transaction. */
export type SourceState =
  | { kind: 'active'; version: number; acl_version: number }
  | { kind: 'inactive'; version: number; acl_version: number; status: 'archived' | 'deleted' }
  | { kind: 'tombstone'; version: number; acl_version: number }
  | { kind: 'unknown' };

/**
 * What a repair reads of a locked ledger row (absent: no row, which the guard reads as empty).
 * `chunkCount` is not a guard register: the chunk count the writer passes to the sink as the
 * previous one.
 */
export type RepairLedgerView = Pick<LedgerRow, 'version' | 'acl_version' | 'tombstone' | 'chunkCount'>;

/** What the state topic holds for the key (for an unknown key's deleted state). */
export interface TopicVersions {
  version: number;
  acl_version: number;
}

export interface RepairItem {
  tenant_id: string;
  document_id: string;
  /** Sink drift kinds found (empty when only the state topic is off). */
  kinds: readonly DriftKind[];
  /** The state topic disagrees with the source for this key. */
  stateTopic?: { topic: TopicVersions | null };
  /** Highest chunk index plus one the sink was seen holding (sink findings). */
  sinkChunkEnd?: number;
}

export const SkipRepair = {
  /** The source changed since the document was judged; the next pass judges it again. */
  changed: 'changed',
  /** A content repair needs the model registered (`vecsync.embedding_models`). */
  unknownModel: 'unknown_model',
} as const;
export type SkipRepair = (typeof SkipRepair)[keyof typeof SkipRepair];

export interface RepairAction {
  /** Upsert on the bulk lane at the source's current version. */
  upsert: boolean;
  /** ACL event on the priority lane with the current ACL. */
  acl: boolean;
  /** Delete on the priority lane. */
  delete: { version: number; acl_version: number; reason: 'hard_delete' | 'deleted' | 'archived' } | null;
  /** Publish the current state again (`append_state`), or a deleted state with these versions. */
  state: { kind: 'current' } | { kind: 'deleted'; version: number; acl_version: number } | null;
  /** New values of the ledger row's registers (only the given ones change), or null. */
  ledger: Partial<RepairLedgerView> | null;
  skipped: SkipRepair | null;
}

const CONTENT_KINDS: ReadonlySet<DriftKind> = new Set([DriftKind.missing, DriftKind.stale, DriftKind.orphanChunks]);

function none(): RepairAction {
  return { upsert: false, acl: false, delete: null, state: null, ledger: null, skipped: null };
}

export function planRepair(
  item: RepairItem,
  source: SourceState,
  ledger: RepairLedgerView | undefined,
  options: { canUpsert: boolean },
): RepairAction {
  const action = none();
  if (item.stateTopic) action.state = stateRepair(source, item.stateTopic.topic);
  if (item.kinds.length === 0) return action;
  const ghost = item.kinds.includes(DriftKind.ghost);
  const reset: Partial<RepairLedgerView> = {};

  if (source.kind === 'active') {
    if (ghost) return { ...action, skipped: SkipRepair.changed };
    const aclMismatch = item.kinds.includes(DriftKind.aclMismatch);
    // A tombstoned ledger row would make the guard skip an ACL event: content repair instead.
    const content = item.kinds.some((k) => CONTENT_KINDS.has(k)) || (aclMismatch && ledger?.tombstone === true);
    if (content) {
      if (!options.canUpsert) return { ...action, skipped: SkipRepair.unknownModel };
      action.upsert = true;
      // A tombstone is lifted too, so the ACL event (which skips tombstoned rows) applies as well.
      if (ledger && (ledger.version >= source.version || ledger.tombstone)) {
        reset.version = Math.min(ledger.version, source.version - 1);
        reset.tombstone = false;
      }
      if (ledger && item.sinkChunkEnd !== undefined && item.sinkChunkEnd > ledger.chunkCount) {
        reset.chunkCount = item.sinkChunkEnd;
      }
    }
    if (aclMismatch) {
      action.acl = true;
      if (ledger && ledger.acl_version >= source.acl_version) reset.acl_version = source.acl_version - 1;
    }
  } else {
    if (!ghost) return { ...action, skipped: SkipRepair.changed };
    const version = source.kind === 'unknown' ? 0 : source.version;
    action.delete = {
      version,
      acl_version: source.kind === 'unknown' ? 0 : source.acl_version,
      reason: source.kind === 'inactive' ? source.status : 'hard_delete',
    };
    if (ledger && (ledger.version > version || (ledger.version === version && ledger.tombstone))) {
      reset.version = version;
      reset.tombstone = false;
    }
  }
  action.ledger = Object.keys(reset).length > 0 ? reset : null;
  return action;
}

function stateRepair(source: SourceState, topic: TopicVersions | null): RepairAction['state'] {
  switch (source.kind) {
    case 'active':
    case 'inactive':
      return { kind: 'current' };
    case 'tombstone':
      return { kind: 'deleted', version: source.version, acl_version: source.acl_version };
    case 'unknown':
      return {
        kind: 'deleted',
        version: Math.max(0, topic?.version ?? 0),
        acl_version: Math.max(0, topic?.acl_version ?? 0),
      };
  }
}
