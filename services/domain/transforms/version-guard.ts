/**
 * The version guard: the pure decision behind guarantees 2 (newer wins across lanes, tombstones
 * block resurrection) and 3 (no stale permission). The writer and the propagator call it with the
 * ledger row they hold locked (`SELECT ... FOR UPDATE`) and store `next` in the same transaction.
 *
 * ## The rule
 *
 * A ledger row holds two independent registers, and every event can only move each forward:
 *
 * - content: `(version, tombstone)`, ordered by version, a delete winning a tie with an upsert of
 *   the same version (so a hard delete that keeps the last version number still applies, and a
 *   late upsert of that version cannot resurrect it). Upserts and deletes move it; ACL events
 *   never do.
 * - permission: `(acl_version, acl)`, ordered by `acl_version`. Upserts and ACL events move it,
 *   whether or not their content applies and whether or not the document is tombstoned.
 *
 * Because each register is a maximum, the final ledger is the same for any order of delivery and
 * any number of duplicates (see the property tests). The sink follows the ledger:
 *
 * - upsert, content newer: write the chunks with the ledger's newest ACL (`decision.acl`), which
 *   is the event's only when `acl_version >= ledger.acl_version`; an upsert never lowers the ACL.
 * - upsert, content not newer but ACL newer and not tombstoned: write the ACL only.
 * - delete, newer: remove the chunks; the row becomes a tombstone at the delete's version.
 * - ACL event, newer and not tombstoned: write the ACL to every chunk, no re-embedding.
 * - ACL event (or upsert) newer than a tombstone's ACL: recorded in the ledger, nothing written
 *   (there is nothing searchable); a later re-creating upsert writes it.
 * - ACL event with no ledger row yet: written (pgvector keeps a per-document ACL row) and recorded
 *   with `version 0`, so an upsert that carries an older ACL still gets the newer one.
 *
 * A delete does not move the permission register, although it carries `acl_version`: it carries no
 * ACL, and raising the version without the value would make the result depend on delivery order.
 * Nothing needs it: the tombstone's version blocks stale content, and the source gives a
 * re-created document `acl_version = tombstone.acl_version + 1`.
 *
 * Assumptions (the source triggers guarantee them): versions and ACL versions start at 1 and rise,
 * and two events with the same `acl_version` carry the same ACL.
 */
import { Operation } from '../types.ts';
import { normalizeAcl, sameAcl } from './acl.ts';

/** The guard-relevant part of a `vecsync.sync_state` row (one sink, document and model). */
export interface LedgerRegisters {
  /** Content version last applied; 0 when only an ACL has been seen. */
  version: number;
  /** Newest ACL version seen; 0 when none. */
  acl_version: number;
  /** The ACL of `acl_version`, normalized: what every chunk of the document must carry. */
  acl: readonly string[];
  /** The document was deleted at `version`; only a newer upsert brings it back. */
  tombstone: boolean;
}

/**
 * A row that does not exist yet. A placeholder row inserted with these defaults (to have
 * something to lock) behaves exactly like no row, because real versions start at 1.
 */
export const EMPTY_LEDGER: LedgerRegisters = Object.freeze({
  version: 0,
  acl_version: 0,
  acl: Object.freeze([]),
  tombstone: false,
});

/** The fields of an event the guard reads; every OutboxEvent is one. */
export type GuardEvent =
  | { op: typeof Operation.upsert; version: number; acl_version: number; acl: readonly string[] }
  | { op: typeof Operation.delete; version: number }
  | { op: typeof Operation.acl; acl_version: number; acl: readonly string[] };

/** What the sink must do for one event. */
export const GuardAction = {
  /** Replace the document's chunks with the event's, carrying `decision.acl`. */
  writeChunks: 'write_chunks',
  /** Remove every chunk of the document. */
  deleteChunks: 'delete_chunks',
  /** Set `decision.acl` on every chunk of the document (and its ACL row). */
  writeAcl: 'write_acl',
  /** Nothing to write to the sink (the ledger may still change: see `ledgerChanged`). */
  skip: 'skip',
} as const;
export type GuardAction = (typeof GuardAction)[keyof typeof GuardAction];

/** Why an event wrote nothing, for metrics and logs. */
export const SkipReason = {
  /** Already applied (same version). */
  duplicate: 'duplicate',
  /** Older than what the ledger holds. */
  stale: 'stale',
  /** The document is deleted at a version at least as new. */
  tombstoned: 'tombstoned',
} as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];

export interface GuardDecision {
  action: GuardAction;
  /** Set when `action` is `skip`. */
  reason: SkipReason | undefined;
  /** The ACL the sink must hold for the document after this event: always the newest known. */
  acl: readonly string[];
  /** The ledger row to store. */
  next: LedgerRegisters;
  /** false when `next` equals the given row, so the ledger write can be left out. */
  ledgerChanged: boolean;
}

/** Decides what one event does, given the document's ledger row (null when there is none). */
export function guard(ledger: LedgerRegisters | null, event: GuardEvent): GuardDecision {
  const row = ledger ?? EMPTY_LEDGER;
  switch (event.op) {
    case Operation.upsert:
      return guardUpsert(row, event);
    case Operation.delete:
      return guardDelete(row, event);
    case Operation.acl:
      return guardAcl(row, event);
    default: {
      const unknown: never = event;
      throw new TypeError(`version guard: unknown operation ${JSON.stringify(unknown)}`);
    }
  }
}

/** Folds events through the guard, as the sink would see them; handy for tests and replays. */
export function applyAll(ledger: LedgerRegisters | null, events: Iterable<GuardEvent>): LedgerRegisters {
  let row = ledger ?? EMPTY_LEDGER;
  for (const event of events) row = guard(row, event).next;
  return row;
}

/** Content order: by version, and a delete wins a tie with an upsert of the same version. */
function contentIsNewer(row: LedgerRegisters, version: number, isDelete: boolean): boolean {
  return version > row.version || (version === row.version && isDelete && !row.tombstone);
}

function contentSkipReason(row: LedgerRegisters, version: number): SkipReason {
  if (row.tombstone) return SkipReason.tombstoned;
  return version === row.version ? SkipReason.duplicate : SkipReason.stale;
}

function withAcl(row: LedgerRegisters, aclVersion: number, acl: readonly string[]): LedgerRegisters {
  return aclVersion > row.acl_version ? { ...row, acl_version: aclVersion, acl: normalizeAcl(acl) } : row;
}

function decide(row: LedgerRegisters, next: LedgerRegisters, action: GuardAction, reason?: SkipReason): GuardDecision {
  return { action, reason, acl: next.acl, next, ledgerChanged: !sameRow(row, next) };
}

function guardUpsert(row: LedgerRegisters, event: Extract<GuardEvent, { op: 'upsert' }>): GuardDecision {
  const permission = withAcl(row, event.acl_version, event.acl);
  if (contentIsNewer(row, event.version, false)) {
    const next = { ...permission, version: event.version, tombstone: false };
    return decide(row, next, GuardAction.writeChunks);
  }
  if (permission !== row && !row.tombstone) return decide(row, permission, GuardAction.writeAcl);
  return decide(row, permission, GuardAction.skip, contentSkipReason(row, event.version));
}

function guardDelete(row: LedgerRegisters, event: Extract<GuardEvent, { op: 'delete' }>): GuardDecision {
  if (contentIsNewer(row, event.version, true)) {
    return decide(row, { ...row, version: event.version, tombstone: true }, GuardAction.deleteChunks);
  }
  return decide(row, row, GuardAction.skip, contentSkipReason(row, event.version));
}

function guardAcl(row: LedgerRegisters, event: Extract<GuardEvent, { op: 'acl' }>): GuardDecision {
  const next = withAcl(row, event.acl_version, event.acl);
  if (row.tombstone) return decide(row, next, GuardAction.skip, SkipReason.tombstoned);
  if (next === row) {
    const reason = event.acl_version === row.acl_version ? SkipReason.duplicate : SkipReason.stale;
    return decide(row, row, GuardAction.skip, reason);
  }
  return decide(row, next, GuardAction.writeAcl);
}

function sameRow(a: LedgerRegisters, b: LedgerRegisters): boolean {
  return (
    a.version === b.version && a.acl_version === b.acl_version && a.tombstone === b.tombstone && sameAcl(a.acl, b.acl)
  );
}
