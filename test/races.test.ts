/**
 * Guarantee 8, source side: application transactions racing on one document, in real PostgreSQL
 * sessions (one connection each, transactions held open) through the real triggers. For every
 * schedule the outbox sequence of the document must have versions that never go down and are
 * newer at each event (outbox id order is commit order), and its final state must be the source's.
 * A sample of schedules also runs end to end (Debezium, Kafka, the services in this process): the
 * sink must come to match the source.
 *
 * Enumerated: every pair of concurrent statements of the issue (insert/delete, delete/re-insert,
 * update/update, update/ACL change, grant/revoke, revoke/insert, archive/restore), from every
 * starting state, with both statement orders and both commit orders. Randomised: 2–3 sessions
 * with 1–2 statements each, any interleaving, some rolled back (fast-check).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { loadConfig } from '../services/config/index.ts';
import { uniqueId } from './support/ids.ts';
import {
  BODIES,
  opLabel,
  outboxProblems,
  PRE_STATES,
  PRINCIPALS,
  setUp,
  sourceState,
  statementOf,
  type DocOp,
  type PreState,
} from './support/histories.ts';
import { startPipeline, type TestPipeline } from './support/pipeline.ts';
import { CONFLICT_CODES, interleave, SessionPool, transaction, type Step } from './support/sessions.ts';
import { ensureStack } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const RUNS = Number(process.env.VECSYNC_RACE_RUNS ?? 80);
const config = loadConfig();

const PAIRS: [string, DocOp, DocOp][] = [
  ['insert/delete', { kind: 'insert', body: 1 }, { kind: 'delete' }],
  ['delete/re-insert', { kind: 'delete' }, { kind: 'insert', body: 2 }],
  ['update/update', { kind: 'update', body: 1 }, { kind: 'update', body: 2 }],
  ['update/revoke', { kind: 'update', body: 3 }, { kind: 'revoke', principal: 'alice' }],
  ['update/grant', { kind: 'update', body: 3 }, { kind: 'grant', principal: 'bob' }],
  ['grant/revoke', { kind: 'grant', principal: 'bob' }, { kind: 'revoke', principal: 'alice' }],
  ['revoke/insert', { kind: 'revoke', principal: 'alice' }, { kind: 'insert', body: 1 }],
  ['archive/restore', { kind: 'archive' }, { kind: 'restore' }],
  ['delete/grant', { kind: 'delete' }, { kind: 'grant', principal: 'carol' }],
];

interface Schedule {
  name: string;
  pre: PreState;
  sessions: DocOp[][];
  /** Rolled-back sessions. */
  rollback?: number[];
  steps: (doc: string) => Step[];
}

/** A holds its statement open, B runs its own, then they commit in the given order. */
function pairSchedule(pre: PreState, first: DocOp, second: DocOp, commitFirst: 0 | 1): Schedule {
  const ops = [first, second];
  return {
    name: `${pre}: A ${opLabel(first)} ‖ B ${opLabel(second)}, ${commitFirst === 0 ? 'A' : 'B'} commits first`,
    pre,
    sessions: [[first], [second]],
    steps: (doc) => {
      const stmt = (s: number) => statementOf(tenantOf(doc), doc, ops[s]!);
      return [
        { session: 0, action: { kind: 'begin' } },
        { session: 0, action: { kind: 'sql', stmt: stmt(0) } },
        { session: 1, action: { kind: 'begin' } },
        { session: 1, action: { kind: 'sql', stmt: stmt(1) } },
        { session: commitFirst, action: { kind: 'commit' } },
        { session: 1 - commitFirst, action: { kind: 'commit' } },
      ];
    },
  };
}

function enumerated(): Schedule[] {
  const out: Schedule[] = [];
  for (const pre of PRE_STATES) {
    for (const [, x, y] of PAIRS) {
      for (const [a, b] of [
        [x, y],
        [y, x],
      ] as const) {
        out.push(pairSchedule(pre, a, b, 0), pairSchedule(pre, a, b, 1));
      }
    }
  }
  return out;
}

/** The two interleavings found by hand with psql sessions. */
const KNOWN: Schedule[] = [
  // A hard-deletes and holds its transaction; B re-inserts the id (blocks on the key); A commits.
  pairSchedule('active', { kind: 'delete' }, { kind: 'insert', body: 2 }, 0),
  // The ACL row is committed; A inserts the document and holds; B revokes and commits; A commits.
  pairSchedule('absent_with_acl', { kind: 'insert', body: 1 }, { kind: 'revoke', principal: 'alice' }, 1),
];

const docTenant = new Map<string, string>();
function tenantOf(doc: string): string {
  return docTenant.get(doc)!;
}

const opArb: fc.Arbitrary<DocOp> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), body: fc.integer({ min: 0, max: BODIES.length - 1 }) }),
  fc.record({ kind: fc.constant('update' as const), body: fc.integer({ min: 0, max: BODIES.length - 1 }) }),
  fc.constant({ kind: 'delete' as const }),
  fc.constant({ kind: 'archive' as const }),
  fc.constant({ kind: 'restore' as const }),
  fc.constant({ kind: 'softdelete' as const }),
  fc.record({ kind: fc.constant('grant' as const), principal: fc.constantFrom(...PRINCIPALS) }),
  fc.record({ kind: fc.constant('revoke' as const), principal: fc.constantFrom(...PRINCIPALS) }),
);

const scheduleArb: fc.Arbitrary<Schedule> = fc
  .record({
    pre: fc.constantFrom(...PRE_STATES),
    sessions: fc.array(fc.array(opArb, { minLength: 1, maxLength: 2 }), { minLength: 2, maxLength: 3 }),
    rollback: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 3, maxLength: 3 }),
    picks: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 12, maxLength: 12 }),
  })
  .map(({ pre, sessions, rollback, picks }) => {
    // About one session in ten rolls back.
    const rolledBack = rollback.flatMap((r, i) => (r === 0 && i < sessions.length ? [i] : []));
    return {
      name: `${pre}: ${sessions.map((ops, i) => `s${i}[${ops.map(opLabel).join('; ')}]${rolledBack.includes(i) ? ' rollback' : ''}`).join(' ‖ ')} picks ${picks.join('')}`,
      pre,
      sessions,
      rollback: rolledBack,
      steps: (doc: string) =>
        interleave(
          sessions.map((ops, i) =>
            transaction(
              i,
              ops.map((op) => statementOf(tenantOf(doc), doc, op)),
              rolledBack.includes(i) ? 'rollback' : 'commit',
            ),
          ),
          picks,
        ),
    };
  });

describe('triggers under concurrent transactions on one document', () => {
  let pool: pg.Pool;
  let sessions: SessionPool;
  const tenant = `tenant_${uniqueId('races')}`;
  let n = 0;

  before(async () => {
    await ensureStack();
    pool = new pg.Pool({ connectionString: config.sourceUrl, max: 3 });
    sessions = new SessionPool(config.sourceUrl);
  });

  after(async () => {
    await sessions?.close();
    await pool?.end();
  });

  /** Runs one schedule on a fresh document of `t`; returns the problems found (empty = fine). */
  async function check(schedule: Schedule, t = tenant): Promise<{ doc: string; problems: string[] }> {
    const doc = `d${++n}`;
    docTenant.set(doc, t);
    await setUp(pool, t, doc, schedule.pre);
    const result = await sessions.run(schedule.sessions.length, schedule.steps(doc));
    const problems: string[] = [];
    for (const [i, s] of result.sessions.entries()) {
      if (s.error && !CONFLICT_CODES.has(s.error.code))
        problems.push(`session ${i} failed unexpectedly: ${s.error.code} ${s.error.message}`);
    }
    problems.push(...(await outboxProblems(pool, t, doc)));
    if (problems.length) problems.push(`trace: ${result.trace.join(' → ')}`);
    return { doc, problems };
  }

  test('the two interleavings found with psql sessions', async () => {
    for (const schedule of KNOWN) {
      const { doc, problems } = await check(schedule);
      assert.deepEqual(problems, [], `${schedule.name} (${doc})`);
    }
    // The re-created document continues above its tombstone; the revoke reached the outbox.
    const reinserted = await sourceState(pool, tenant, `d${n - 1}`);
    assert.ok(reinserted.exists && reinserted.version! > reinserted.tombstone!.version, 're-insert is above tombstone');
    const revoked = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM vecsync.vector_sync_outbox
        WHERE tenant_id = $1 AND document_id = $2 AND operation = 'acl' AND payload -> 'acl' = '[]'::jsonb`,
      [tenant, `d${n}`],
    );
    assert.equal(Number(revoked.rows[0]!.n), 1, 'the revoke is an acl event with an empty ACL');
  });

  test('every pair of concurrent statements, from every starting state, in every order', async () => {
    const failures: string[] = [];
    const schedules = enumerated();
    for (const schedule of schedules) {
      const { doc, problems } = await check(schedule);
      if (problems.length) failures.push(`${schedule.name} (${doc}):\n    ${problems.join('\n    ')}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${schedules.length} schedules broke an invariant`);
  });

  test(`${RUNS} random schedules of 2–3 sessions`, async () => {
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (schedule) => {
        const { doc, problems } = await check(schedule);
        assert.deepEqual(problems, [], `${schedule.name} (${doc})`);
      }),
      { numRuns: RUNS },
    );
  });

  describe('end to end: the sink comes to match the source', () => {
    let p: TestPipeline;
    const e2eTenant = `tenant_${uniqueId('races_e2e')}`;

    before(async () => {
      p = await startPipeline('races');
    });

    after(async () => {
      await p?.stop();
    });

    test('known bugs, one schedule per pair and random ones', async () => {
      const sample = [
        ...KNOWN,
        ...PAIRS.map(([, x, y]) => pairSchedule('active', x, y, 1)),
        ...PAIRS.map(([, x, y]) => pairSchedule('absent_with_acl', y, x, 0)),
        ...fc.sample(scheduleArb, { numRuns: 6, seed: 42 }),
      ];
      const docs: string[] = [];
      for (const schedule of sample) {
        const { doc, problems } = await check(schedule, e2eTenant);
        assert.deepEqual(problems, [], `${schedule.name} (${doc})`);
        docs.push(doc);
      }
      const index = p.rt.activeIndex;
      await waitFor(
        async () => {
          const stored = await p.sink.inspect(index, e2eTenant);
          const wrong: string[] = [];
          for (const doc of docs) {
            const s = await sourceState(p.source, e2eTenant, doc);
            const chunks = stored.filter((c) => c.document_id === doc);
            if (!(s.exists && s.status === 'active')) {
              if (chunks.length)
                wrong.push(`${doc}: not searchable in the source but ${chunks.length} chunks in the sink`);
              continue;
            }
            if (chunks.length === 0) wrong.push(`${doc}: active v${s.version} but no chunks`);
            for (const c of chunks) {
              if (c.document_version !== s.version || c.acl_version !== s.aclVersion)
                wrong.push(
                  `${doc}#${c.chunk_index}: v${c.document_version}/acl${c.acl_version}, source v${s.version}/acl${s.aclVersion}`,
                );
              if (JSON.stringify([...c.acl].sort()) !== JSON.stringify(s.acl))
                wrong.push(`${doc}#${c.chunk_index}: ACL ${JSON.stringify(c.acl)}, source ${JSON.stringify(s.acl)}`);
            }
          }
          if (wrong.length) throw new Error(wrong.join('; '));
          return true;
        },
        {
          timeoutMs: 90_000,
          intervalMs: 500,
          description: `the sink to match the source for ${docs.length} documents`,
        },
      );
    });
  });
});
