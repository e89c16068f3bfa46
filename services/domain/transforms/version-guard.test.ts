import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizeAcl } from './acl.ts';
import {
  EMPTY_LEDGER,
  GuardAction,
  SkipReason,
  applyAll,
  guard,
  type GuardEvent,
  type LedgerRegisters,
} from './version-guard.ts';

const upsert = (version: number, acl_version: number, acl: string[] = ['alice']): GuardEvent => ({
  op: 'upsert',
  version,
  acl_version,
  acl,
});
const del = (version: number): GuardEvent => ({ op: 'delete', version });
const acl = (acl_version: number, principals: string[]): GuardEvent => ({ op: 'acl', acl_version, acl: principals });
const row = (version: number, acl_version: number, principals: string[], tombstone = false): LedgerRegisters => ({
  version,
  acl_version,
  acl: principals,
  tombstone,
});

describe('version guard: content', () => {
  it('applies the first upsert of a document and records it', () => {
    const d = guard(null, upsert(1, 1, ['bob', 'alice', 'bob']));
    assert.equal(d.action, GuardAction.writeChunks);
    assert.deepEqual(d.next, row(1, 1, ['alice', 'bob']));
    assert.deepEqual(d.acl, ['alice', 'bob']);
    assert.equal(d.ledgerChanged, true);
  });

  it('skips a replayed upsert without touching the ledger', () => {
    const d = guard(row(3, 2, ['alice']), upsert(3, 2, ['alice']));
    assert.equal(d.action, GuardAction.skip);
    assert.equal(d.reason, SkipReason.duplicate);
    assert.equal(d.ledgerChanged, false);
  });

  it('skips an upsert older than the ledger', () => {
    const d = guard(row(5, 2, ['alice']), upsert(4, 2));
    assert.equal(d.action, GuardAction.skip);
    assert.equal(d.reason, SkipReason.stale);
  });

  it('a tombstone blocks every upsert up to its version and yields to a newer one', () => {
    const tomb = row(7, 3, ['alice'], true);
    for (const v of [1, 6, 7]) {
      const d = guard(tomb, upsert(v, 3));
      assert.equal(d.action, GuardAction.skip, `v${v}`);
      assert.equal(d.reason, SkipReason.tombstoned);
    }
    const back = guard(tomb, upsert(8, 4, ['carol']));
    assert.equal(back.action, GuardAction.writeChunks);
    assert.deepEqual(back.next, row(8, 4, ['carol']));
  });

  it('a delete applies when newer, and when it ties the last upsert (hard delete keeps the version)', () => {
    assert.equal(guard(row(4, 1, ['a']), del(5)).action, GuardAction.deleteChunks);
    const tie = guard(row(4, 1, ['a']), del(4));
    assert.equal(tie.action, GuardAction.deleteChunks);
    assert.deepEqual(tie.next, row(4, 1, ['a'], true));
    assert.equal(guard(tie.next, del(4)).reason, SkipReason.tombstoned);
    assert.equal(guard(row(4, 1, ['a']), del(3)).reason, SkipReason.stale);
  });

  it('a delete with no ledger row leaves a tombstone', () => {
    const d = guard(null, del(2));
    assert.equal(d.action, GuardAction.deleteChunks);
    assert.deepEqual(d.next, row(2, 0, [], true));
    assert.equal(guard(d.next, upsert(2, 1)).action, GuardAction.skip);
  });
});

describe('version guard: permissions', () => {
  it('an ACL event newer than the ledger is written without re-embedding', () => {
    const d = guard(row(3, 1, ['alice']), acl(2, ['bob']));
    assert.equal(d.action, GuardAction.writeAcl);
    assert.deepEqual(d.next, row(3, 2, ['bob']));
  });

  it('an older or replayed ACL event is skipped', () => {
    assert.equal(guard(row(3, 4, ['x']), acl(3, ['y'])).reason, SkipReason.stale);
    assert.equal(guard(row(3, 4, ['x']), acl(4, ['x'])).reason, SkipReason.duplicate);
  });

  it('an upsert never lowers the ACL: its chunks carry the ledger ACL when that is newer', () => {
    const d = guard(row(3, 5, ['bob']), upsert(4, 4, ['alice']));
    assert.equal(d.action, GuardAction.writeChunks);
    assert.deepEqual(d.acl, ['bob']);
    assert.deepEqual(d.next, row(4, 5, ['bob']));
  });

  it('an upsert at the same ACL version writes its (identical) ACL', () => {
    const d = guard(row(3, 5, ['bob']), upsert(4, 5, ['bob']));
    assert.deepEqual(d.acl, ['bob']);
  });

  it('an upsert whose content is stale but whose ACL is newer writes the ACL only', () => {
    const d = guard(row(5, 1, ['alice']), upsert(4, 2, ['bob']));
    assert.equal(d.action, GuardAction.writeAcl);
    assert.deepEqual(d.next, row(5, 2, ['bob']));
  });

  it('an ACL event before any upsert is recorded so a later upsert with an older ACL cannot lower it', () => {
    const first = guard(null, acl(3, ['carol']));
    assert.equal(first.action, GuardAction.writeAcl);
    assert.deepEqual(first.next, row(0, 3, ['carol']));
    const later = guard(first.next, upsert(1, 2, ['alice']));
    assert.equal(later.action, GuardAction.writeChunks);
    assert.deepEqual(later.acl, ['carol']);
  });

  it('an ACL change of a tombstoned document is recorded, not written, and reaches a re-created document', () => {
    const tomb = row(4, 2, ['alice'], true);
    const d = guard(tomb, acl(3, ['bob']));
    assert.equal(d.action, GuardAction.skip);
    assert.equal(d.reason, SkipReason.tombstoned);
    assert.equal(d.ledgerChanged, true);
    const restored = guard(d.next, upsert(5, 2, ['alice']));
    assert.equal(restored.action, GuardAction.writeChunks);
    assert.deepEqual(restored.acl, ['bob']);
  });

  it('treats a placeholder row (inserted only to be locked) like no row', () => {
    for (const event of [upsert(1, 1), del(1), acl(1, ['a'])]) {
      assert.deepEqual(guard(EMPTY_LEDGER, event), guard(null, event));
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Property tests: a simulated source document emits events the way the triggers do; the pipeline
// receives them in any order, with duplicates.
// ------------------------------------------------------------------------------------------------

type SourceOp =
  | { kind: 'create' }
  | { kind: 'edit' }
  | { kind: 'set_acl'; acl: string[] }
  | { kind: 'archive' }
  | { kind: 'soft_delete' }
  | { kind: 'restore' }
  | { kind: 'hard_delete'; bump: boolean };

interface SourceDoc {
  exists: boolean;
  status: 'active' | 'archived' | 'deleted';
  version: number;
  acl_version: number;
  acl: string[];
  tombstone: { version: number; acl_version: number } | null;
}

const principals = fc.subarray(['alice', 'bob', 'carol', 'dave']);
const sourceOp: fc.Arbitrary<SourceOp> = fc.oneof(
  fc.constant({ kind: 'create' as const }),
  fc.constant({ kind: 'edit' as const }),
  principals.map((p) => ({ kind: 'set_acl' as const, acl: p })),
  fc.constant({ kind: 'archive' as const }),
  fc.constant({ kind: 'soft_delete' as const }),
  fc.constant({ kind: 'restore' as const }),
  fc.boolean().map((bump) => ({ kind: 'hard_delete' as const, bump })),
);

/** Runs source operations the way the triggers in docs/architecture.md do, returning the events. */
function simulate(ops: SourceOp[]): { events: GuardEvent[]; doc: SourceDoc } {
  const doc: SourceDoc = { exists: false, status: 'active', version: 0, acl_version: 0, acl: [], tombstone: null };
  const events: GuardEvent[] = [];
  const content = (): GuardEvent =>
    doc.status === 'active' ? upsert(doc.version, doc.acl_version, doc.acl) : del(doc.version);
  for (const op of ops) {
    if (op.kind === 'create' && !doc.exists) {
      Object.assign(doc, {
        exists: true,
        status: 'active',
        version: (doc.tombstone?.version ?? 0) + 1,
        acl_version: (doc.tombstone?.acl_version ?? 0) + 1,
        acl: [],
      });
      events.push(content());
    } else if (!doc.exists) {
      continue;
    } else if (op.kind === 'edit') {
      doc.version += 1;
      events.push(content());
    } else if (op.kind === 'set_acl') {
      doc.acl_version += 1;
      doc.acl = normalizeAcl(op.acl);
      events.push(acl(doc.acl_version, doc.acl));
    } else if ((op.kind === 'archive' || op.kind === 'soft_delete') && doc.status === 'active') {
      doc.version += 1;
      doc.status = op.kind === 'archive' ? 'archived' : 'deleted';
      events.push(content());
    } else if (op.kind === 'restore' && doc.status !== 'active') {
      doc.version += 1;
      doc.status = 'active';
      events.push(content());
    } else if (op.kind === 'hard_delete') {
      // Both trigger styles are allowed: the tombstone keeps the last version, or takes the next.
      doc.tombstone = { version: doc.version + (op.bump ? 1 : 0), acl_version: doc.acl_version };
      doc.exists = false;
      events.push(del(doc.tombstone.version));
    }
  }
  return { events, doc };
}

/** A history plus a delivery of it: every event at least once, up to three times, any order. */
const historyAndDelivery = fc.array(sourceOp, { maxLength: 30 }).chain((ops) => {
  const { events, doc } = simulate(ops);
  const copies = fc.array(
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.array(fc.nat(), { minLength: 3, maxLength: 3 })),
    {
      minLength: events.length,
      maxLength: events.length,
    },
  );
  return copies.map((perEvent) => {
    const keyed: { key: number; i: number; event: GuardEvent }[] = [];
    perEvent.forEach(([count, keys], i) => {
      for (let c = 0; c < count; c++) keyed.push({ key: keys[c]!, i, event: events[i]! });
    });
    keyed.sort((a, b) => a.key - b.key || a.i - b.i);
    return { events, doc, delivery: keyed.map((k) => k.event) };
  });
});

interface SinkDoc {
  chunksVersion: number | null;
  aclVersion: number;
  acl: readonly string[];
}

/** Applies decisions to a model sink, checking at every write that no older ACL is written. */
function deliver(delivery: GuardEvent[]): { ledger: LedgerRegisters; sink: SinkDoc } {
  let ledger: LedgerRegisters | null = null;
  const sink: SinkDoc = { chunksVersion: null, aclVersion: 0, acl: [] };
  for (const event of delivery) {
    const d = guard(ledger, event);
    if (d.action === GuardAction.writeChunks || d.action === GuardAction.writeAcl) {
      assert.ok(d.next.acl_version >= sink.aclVersion, 'an older ACL was written over a newer one');
      sink.aclVersion = d.next.acl_version;
      sink.acl = d.acl;
    }
    if (d.action === GuardAction.writeChunks) sink.chunksVersion = (event as { version: number }).version;
    if (d.action === GuardAction.deleteChunks) sink.chunksVersion = null;
    ledger = d.next;
  }
  return { ledger: ledger ?? EMPTY_LEDGER, sink };
}

describe('version guard: properties', () => {
  it('any delivery order with duplicates yields the ledger of in-order delivery', () => {
    fc.assert(
      fc.property(historyAndDelivery, ({ events, delivery }) => {
        assert.deepEqual(applyAll(null, delivery), applyAll(null, events));
      }),
      { numRuns: 2000 },
    );
  });

  it('after any delivery the sink matches the source: content, deletion and ACL', () => {
    fc.assert(
      fc.property(historyAndDelivery, ({ doc, delivery }) => {
        const { sink } = deliver(delivery);
        const searchable = doc.exists && doc.status === 'active';
        assert.equal(sink.chunksVersion, searchable ? doc.version : null);
        if (searchable) assert.deepEqual(sink.acl, doc.acl);
      }),
      { numRuns: 2000 },
    );
  });

  it('replaying a whole delivery again changes nothing', () => {
    fc.assert(
      fc.property(historyAndDelivery, ({ delivery }) => {
        const once = applyAll(null, delivery);
        for (const event of delivery) assert.equal(guard(once, event).ledgerChanged, false);
        for (const event of delivery) assert.equal(guard(once, event).action, GuardAction.skip);
      }),
      { numRuns: 1000 },
    );
  });
});
