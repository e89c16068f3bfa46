import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { guard, GuardAction, type LedgerRegisters } from '../../domain/transforms/version-guard.ts';
import { DriftKind } from '../../domain/transforms/drift.ts';
import { planRepair, SkipRepair, type RepairLedgerView, type RepairItem, type SourceState } from './plan.ts';

const item = (kinds: DriftKind[], over: Partial<RepairItem> = {}): RepairItem => ({
  tenant_id: 't',
  document_id: 'd',
  kinds,
  ...over,
});
const active = (version: number, acl_version: number): SourceState => ({ kind: 'active', version, acl_version });
const opts = { canUpsert: true };

/** The ledger row after the plan's reset. */
function reset(ledger: RepairLedgerView | undefined, patch: Partial<RepairLedgerView> | null): LedgerRegisters {
  const base = ledger ?? { version: 0, acl_version: 0, tombstone: false, chunkCount: 0 };
  const { chunkCount: _chunks, ...registers } = { ...base, ...patch };
  return { ...registers, acl: ['old'] };
}

describe('planRepair', () => {
  it('content drift: an upsert on the bulk lane, the ledger moved one version back when it holds the version', () => {
    const plan = planRepair(
      item([DriftKind.missing]),
      active(5, 2),
      { version: 5, acl_version: 2, tombstone: false, chunkCount: 1 },
      opts,
    );
    assert.equal(plan.upsert, true);
    assert.equal(plan.acl, false);
    assert.deepEqual(plan.ledger, { version: 4, tombstone: false });
  });

  it('orphan chunks: the chunk count is raised to what the sink holds, so sinks that prune by id remove them', () => {
    const ledger = { version: 5, acl_version: 2, tombstone: false, chunkCount: 3 };
    const plan = planRepair(item([DriftKind.orphanChunks], { sinkChunkEnd: 5 }), active(5, 2), ledger, opts);
    assert.deepEqual(plan.ledger, { version: 4, tombstone: false, chunkCount: 5 });
    const fewer = planRepair(item([DriftKind.stale], { sinkChunkEnd: 2 }), active(5, 2), ledger, opts);
    assert.deepEqual(fewer.ledger, { version: 4, tombstone: false });
  });

  it('content drift with the ledger behind: no reset (the upsert applies anyway)', () => {
    const plan = planRepair(
      item([DriftKind.stale]),
      active(5, 2),
      { version: 3, acl_version: 2, tombstone: false, chunkCount: 1 },
      opts,
    );
    assert.equal(plan.upsert, true);
    assert.equal(plan.ledger, null);
    assert.equal(planRepair(item([DriftKind.stale]), active(5, 2), undefined, opts).ledger, null);
  });

  it('ACL drift: an ACL event, the ACL version moved one back', () => {
    const plan = planRepair(
      item([DriftKind.aclMismatch]),
      active(5, 7),
      { version: 5, acl_version: 7, tombstone: false, chunkCount: 1 },
      opts,
    );
    assert.equal(plan.upsert, false);
    assert.equal(plan.acl, true);
    assert.deepEqual(plan.ledger, { acl_version: 6 });
  });

  it('ghost of an archived document whose ledger has the tombstone: delete at its version, tombstone lifted', () => {
    const plan = planRepair(
      item([DriftKind.ghost]),
      { kind: 'inactive', version: 4, acl_version: 2, status: 'archived' },
      { version: 4, acl_version: 2, tombstone: true, chunkCount: 0 },
      opts,
    );
    assert.deepEqual(plan.delete, { version: 4, acl_version: 2, reason: 'archived' });
    assert.deepEqual(plan.ledger, { version: 4, tombstone: false });
  });

  it('ghost of an unknown document: delete at version 0', () => {
    const plan = planRepair(item([DriftKind.ghost]), { kind: 'unknown' }, undefined, opts);
    assert.deepEqual(plan.delete, { version: 0, acl_version: 0, reason: 'hard_delete' });
    assert.equal(plan.ledger, null);
  });

  it('skips a document whose source changed since it was judged', () => {
    assert.equal(planRepair(item([DriftKind.ghost]), active(2, 1), undefined, opts).skipped, SkipRepair.changed);
    const archived: SourceState = { kind: 'inactive', version: 3, acl_version: 1, status: 'deleted' };
    assert.equal(planRepair(item([DriftKind.missing]), archived, undefined, opts).skipped, SkipRepair.changed);
  });

  it('cannot re-embed without a registered model', () => {
    const plan = planRepair(item([DriftKind.missing]), active(2, 1), undefined, { canUpsert: false });
    assert.equal(plan.skipped, SkipRepair.unknownModel);
    assert.equal(plan.upsert, false);
  });

  it('state-topic repairs publish the current truth', () => {
    const state = (source: SourceState) =>
      planRepair(item([], { stateTopic: { topic: { version: 3, acl_version: 2 } } }), source, undefined, opts).state;
    assert.deepEqual(state(active(4, 1)), { kind: 'current' });
    assert.deepEqual(state({ kind: 'tombstone', version: 9, acl_version: 4 }), {
      kind: 'deleted',
      version: 9,
      acl_version: 4,
    });
    assert.deepEqual(state({ kind: 'unknown' }), { kind: 'deleted', version: 3, acl_version: 2 });
  });

  const ledgerArb = fc.option(
    fc.record({
      version: fc.integer({ min: 0, max: 12 }),
      acl_version: fc.integer({ min: 0, max: 12 }),
      tombstone: fc.boolean(),
      chunkCount: fc.integer({ min: 0, max: 4 }),
    }),
    { nil: undefined },
  );

  it('after the reset, the guard applies every planned event (the repair is never blocked)', () => {
    fc.assert(
      fc.property(
        ledgerArb,
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        fc.subarray([DriftKind.missing, DriftKind.stale, DriftKind.orphanChunks, DriftKind.aclMismatch], {
          minLength: 1,
        }),
        (ledger, version, aclVersion, kinds) => {
          const plan = planRepair(item(kinds), active(version, aclVersion), ledger, opts);
          let row = reset(ledger, plan.ledger);
          if (plan.acl) {
            const d = guard(row, { op: 'acl', acl_version: aclVersion, acl: ['new'] });
            assert.equal(d.action, GuardAction.writeAcl, `acl event blocked by ${JSON.stringify(row)}`);
            row = { ...row, ...d.next };
          }
          if (plan.upsert) {
            const d = guard(row, { op: 'upsert', version, acl_version: aclVersion, acl: ['new'] });
            assert.equal(d.action, GuardAction.writeChunks, `upsert blocked by ${JSON.stringify(row)}`);
            // With an ACL repair, the chunks are written with the source's ACL, whatever the order.
            if (plan.acl) assert.deepEqual(d.acl, ['new']);
          }
          assert.ok(plan.upsert || plan.acl);
          // A reset unblocks no older upsert that the row before it blocked.
          for (let older = 1; older < version; older++) {
            const event = { op: 'upsert' as const, version: older, acl_version: 0, acl: [] };
            if (guard(reset(ledger, null), event).action === GuardAction.writeChunks) continue;
            assert.notEqual(guard(reset(ledger, plan.ledger), event).action, GuardAction.writeChunks);
          }
        },
      ),
    );
  });

  it('after the reset, the guard applies every planned delete and leaves a tombstone at its version', () => {
    const sources = fc.oneof(
      fc.record({
        kind: fc.constant('inactive' as const),
        version: fc.integer({ min: 1, max: 10 }),
        acl_version: fc.integer({ min: 1, max: 10 }),
        status: fc.constantFrom('archived' as const, 'deleted' as const),
      }),
      fc.record({
        kind: fc.constant('tombstone' as const),
        version: fc.integer({ min: 1, max: 10 }),
        acl_version: fc.integer({ min: 1, max: 10 }),
      }),
      fc.constant({ kind: 'unknown' as const }),
    );
    fc.assert(
      fc.property(ledgerArb, sources, (ledger, source) => {
        const plan = planRepair(item([DriftKind.ghost]), source, ledger, opts);
        assert.ok(plan.delete);
        const row = reset(ledger, plan.ledger);
        const d = guard(row, { op: 'delete', version: plan.delete.version });
        assert.equal(d.action, GuardAction.deleteChunks, `delete blocked by ${JSON.stringify(row)}`);
        assert.deepEqual([d.next.version, d.next.tombstone], [plan.delete.version, true]);
        // A late upsert of any version up to the delete's cannot resurrect the document.
        const late = guard(d.next, { op: 'upsert', version: plan.delete.version, acl_version: 1, acl: [] });
        assert.notEqual(late.action, GuardAction.writeChunks);
      }),
    );
  });
});
