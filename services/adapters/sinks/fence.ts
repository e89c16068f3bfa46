/**
 * The sink's own fence: the pure rule by which a sink refuses a write older than what it holds,
 * even when the write arrives after the ledger lock that should have kept it out was lost (a
 * writer whose source connection died mid-write; test/fenced-writes.test.ts shows both).
 *
 * The ledger decides what to write; the fence is the second line. A sink that can (pgvector)
 * stores one fence row per sink, model, tenant and document and makes every write conditional on
 * it in its own transaction; `sql.ts` there is this rule in SQL, and the tests check the two agree.
 * A sink that cannot (Pinecone: no conditional writes) uses the rule to re-check after a write.
 *
 * Two registers, each only moving forward, like the ledger's:
 *
 * - content `(version, tombstone)`: a content write applies when its version is newer, or equal
 *   and not tombstoned (a replay); a delete applies when its version is at least as new (a delete
 *   wins a tie, so a late write of the deleted version cannot resurrect it).
 * - permission: a tombstone records the newest ACL version the sink held when it was deleted;
 *   an ACL write at or below it changes nothing. While the document is stored, its ACL row is
 *   the register (it only ever raises `acl_version`). A re-created document's ACL versions start
 *   above its tombstone's (the source triggers see to it), so nothing newer is ever refused.
 */
import type { FenceSkip } from './types.ts';

/** What the sink holds for one document in one model's index. */
export interface FenceRow {
  /** The version of the last content write or delete that applied. */
  version: number;
  /** The last one that applied was a delete. */
  tombstone: boolean;
  /** With a tombstone: the newest ACL version the sink held or the delete carried. */
  aclVersion: number;
}

export type FenceVerdict = { apply: true } | { apply: false; reason: FenceSkip };

const APPLY: FenceVerdict = Object.freeze({ apply: true });
const skip = (fence: FenceRow): FenceVerdict => ({ apply: false, reason: fence.tombstone ? 'tombstoned' : 'stale' });

/** A content write of `version`. */
export function fenceWrite(fence: FenceRow | undefined, version: number): FenceVerdict {
  if (!fence || version > fence.version || (version === fence.version && !fence.tombstone)) return APPLY;
  return skip(fence);
}

/** A delete of `version`. */
export function fenceDelete(fence: FenceRow | undefined, version: number): FenceVerdict {
  if (!fence || version >= fence.version) return APPLY;
  return skip(fence);
}

/** An ACL write of `aclVersion`, given the document's fence rows in every model. */
export function fenceAcl(fences: readonly FenceRow[], aclVersion: number): FenceVerdict {
  const blocking = fences.find((f) => f.tombstone && f.aclVersion >= aclVersion);
  return blocking ? skip(blocking) : APPLY;
}

/** The fence row after a content write that applied. */
export function afterWrite(fence: FenceRow | undefined, version: number): FenceRow {
  return { version, tombstone: false, aclVersion: fence?.aclVersion ?? 0 };
}

/**
 * The fence row after a delete that applied. `storedAclVersion`: the ACL version of the ACL the
 * delete removes (0 when none), so the tombstone blocks exactly the ACL writes that are not newer.
 */
export function afterDelete(
  fence: FenceRow | undefined,
  version: number,
  aclVersion: number,
  storedAclVersion: number,
): FenceRow {
  return { version, tombstone: true, aclVersion: Math.max(fence?.aclVersion ?? 0, aclVersion, storedAclVersion) };
}
