/**
 * Concurrent PostgreSQL sessions driven through a schedule: each session is its own connection
 * holding its own transaction, and a schedule says in which order their statements are issued.
 *
 * A statement is issued without awaiting it; the driver then waits until it either completes or
 * is blocked on a lock held by another session (seen through `pg_blocking_pids`), so the next step
 * really runs after it. A step for a session whose statement is still blocked is deferred, and the
 * other sessions' steps go first (their COMMIT is what unblocks it), so the driver never deadlocks
 * itself. Errors PostgreSQL raises for conflicting transactions (unique violation, deadlock,
 * serialization failure) abort that session's transaction, which then rolls back.
 */
import pg from 'pg';

export interface Statement {
  /** A short label for failure messages, e.g. `revoke alice`. */
  label: string;
  sql: string;
  params?: unknown[];
}

export type Action = { kind: 'begin' } | { kind: 'commit' } | { kind: 'rollback' } | { kind: 'sql'; stmt: Statement };

export interface Step {
  session: number;
  action: Action;
}

export interface SessionOutcome {
  /** True when COMMIT succeeded. */
  committed: boolean;
  /** The error that aborted the transaction, if any (its SQLSTATE and message). */
  error?: { code: string; message: string };
}

export interface ScheduleResult {
  sessions: SessionOutcome[];
  /** Session indices in the order their COMMIT completed. */
  commitOrder: number[];
  /** What was actually issued, in order (deferred steps move): for failure messages. */
  trace: string[];
}

/** SQLSTATEs that concurrent transactions may legitimately get: the application retries them. */
export const CONFLICT_CODES = new Set(['23505', '40P01', '40001']);

interface Live {
  client: pg.Client;
  pid: number;
  busy: Promise<void> | undefined;
  aborted: boolean;
  outcome: SessionOutcome;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class SessionPool {
  private clients: Live[] = [];
  private monitor: pg.Client | undefined;

  constructor(private readonly url: string) {}

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'vecsync-race-test' });
    await client.connect();
    return client;
  }

  /** Runs one schedule over `count` fresh sessions (connections are reused between schedules). */
  async run(count: number, steps: Step[]): Promise<ScheduleResult> {
    this.monitor ??= await this.connect();
    while (this.clients.length < count) {
      const client = await this.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // A lost session must not block the others for long.
      await client.query(`SET lock_timeout = '20s'`);
      this.clients.push({ client, pid, busy: undefined, aborted: false, outcome: { committed: false } });
    }
    const live = this.clients.slice(0, count);
    for (const s of live) {
      s.busy = undefined;
      s.aborted = false;
      s.outcome = { committed: false };
    }
    const result: ScheduleResult = { sessions: live.map((s) => s.outcome), commitOrder: [], trace: [] };
    const remaining = [...steps];
    while (remaining.length > 0) {
      const index = remaining.findIndex((step) => live[step.session]!.busy === undefined);
      if (index < 0) {
        await Promise.race(live.map((s) => s.busy).filter((b) => b !== undefined));
        continue;
      }
      const [step] = remaining.splice(index, 1);
      const session = live[step!.session]!;
      const issued = this.issue(session, step!, result);
      if (issued) await this.settleOrBlocked(session);
    }
    await Promise.all(live.map((s) => s.busy));
    return result;
  }

  /** Sends a step; returns false when nothing was sent (an aborted transaction skips statements). */
  private issue(session: Live, step: Step, result: ScheduleResult): boolean {
    const { action } = step;
    let sql: string;
    let params: unknown[] | undefined;
    if (action.kind === 'sql') {
      if (session.aborted) return false;
      sql = action.stmt.sql;
      params = action.stmt.params;
    } else if (action.kind === 'begin') {
      sql = 'BEGIN';
    } else {
      sql = action.kind === 'commit' && !session.aborted ? 'COMMIT' : 'ROLLBACK';
    }
    const label = action.kind === 'sql' ? action.stmt.label : sql.toLowerCase();
    result.trace.push(`s${step.session}:${label}`);
    const promise = session.client.query(sql, params).then(
      () => {
        if (sql === 'COMMIT') {
          session.outcome.committed = true;
          result.commitOrder.push(step.session);
        }
      },
      (error: { code?: string; message?: string }) => {
        session.aborted = true;
        session.outcome.error ??= { code: error.code ?? '?', message: error.message ?? String(error) };
        result.trace.push(`s${step.session}:error ${error.code}`);
      },
    );
    session.busy = promise.finally(() => {
      session.busy = undefined;
    });
    return true;
  }

  /** Waits until the session's statement is done or waiting for a lock another session holds. */
  private async settleOrBlocked(session: Live): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (session.busy === undefined) return;
      const res = await this.monitor!.query<{ blocked: boolean }>(
        'SELECT cardinality(pg_blocking_pids($1)) > 0 AS blocked',
        [session.pid],
      );
      if (res.rows[0]!.blocked) return;
      if (Date.now() > deadline) throw new Error(`session ${session.pid} neither finished nor blocked within 30 s`);
      await sleep(2);
    }
  }

  async close(): Promise<void> {
    for (const s of this.clients) await s.client.end().catch(() => undefined);
    await this.monitor?.end().catch(() => undefined);
    this.clients = [];
    this.monitor = undefined;
  }
}

/** `BEGIN; ...statements; COMMIT` for one session, as steps. */
export function transaction(session: number, statements: Statement[], end: 'commit' | 'rollback' = 'commit'): Step[] {
  return [
    { session, action: { kind: 'begin' } },
    ...statements.map((stmt): Step => ({ session, action: { kind: 'sql', stmt } })),
    { session, action: { kind: end } },
  ];
}

/**
 * Merges per-session step lists into one schedule: `picks` says which session goes next (a
 * pick of a session with no steps left is ignored); what is left is appended in session order.
 */
export function interleave(perSession: Step[][], picks: number[]): Step[] {
  const queues = perSession.map((steps) => [...steps]);
  const out: Step[] = [];
  for (const pick of picks) {
    const next = queues[pick % queues.length]!.shift();
    if (next) out.push(next);
  }
  for (const q of queues) out.push(...q);
  return out;
}
