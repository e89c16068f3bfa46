/**
 * Backfills in PostgreSQL (`vecsync.backfills`, `vecsync.backfill_items`, migration 0009).
 *
 * A backfill fixes its plan at start: every active document (of one tenant, or all), in the
 * operator's importance order (`vecsync.document_importance`), then oldest first. The plan makes
 * the cursor one integer (`position`) and `total` exact. Each step enqueues the next slice of the
 * plan on the bulk lane AND advances the cursor in ONE transaction, so a runner killed at any
 * point has either enqueued a slice and moved past it, or neither: a resume never redoes finished
 * work and never skips any. Re-enqueued rows are safe anyway: the ledger's version guard makes an
 * upsert of unchanged content a no-op.
 */
import type pg from 'pg';
import { ConfigError } from '../../domain/errors.ts';
import { modelKey } from '../../domain/types.ts';
import { getModel } from '../../adapters/postgres/models.ts';

export const BackfillState = { running: 'running', paused: 'paused', done: 'done', failed: 'failed' } as const;
export type BackfillState = (typeof BackfillState)[keyof typeof BackfillState];

export interface Backfill {
  id: number;
  model: string;
  modelName: string;
  modelVersion: number;
  tenant: string | null;
  state: BackfillState;
  rate: number;
  total: number;
  done: number;
  runner: string | null;
  leaseUntil: Date | null;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

interface BackfillRow {
  id: string;
  model_name: string;
  model_version: number;
  tenant_id: string | null;
  state: BackfillState;
  rate: number;
  total: string;
  position: string;
  runner: string | null;
  lease_until: Date | null;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const COLUMNS =
  'id, model_name, model_version, tenant_id, state, rate, total, position, runner, lease_until, error, created_at, finished_at';

function fromRow(r: BackfillRow): Backfill {
  return {
    id: Number(r.id),
    model: modelKey(r.model_name, r.model_version),
    modelName: r.model_name,
    modelVersion: r.model_version,
    tenant: r.tenant_id,
    state: r.state,
    rate: r.rate,
    total: Number(r.total),
    done: Number(r.position),
    runner: r.runner,
    leaseUntil: r.lease_until,
    error: r.error,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
  };
}

/** `hashing-384.v2` → name and version. */
export function parseModelKey(key: string): { name: string; version: number } {
  const m = /^(.+)\.v([1-9][0-9]*)$/.exec(key);
  if (!m)
    throw new ConfigError(`invalid model ${JSON.stringify(key)}: expected <name>.v<version>, e.g. hashing-384.v1`);
  return { name: m[1]!, version: Number(m[2]) };
}

export interface NewBackfill {
  model: { name: string; version: number };
  /** Only these tenants' documents (null: every tenant). Recorded comma-separated in tenant_id. */
  tenants: string[] | null;
  rate: number;
}

/** Creates a backfill and its plan in one transaction; returns it (state running, no runner yet). */
export async function createBackfill(pool: pg.Pool, spec: NewBackfill): Promise<Backfill> {
  if (!Number.isInteger(spec.rate) || spec.rate < 1)
    throw new ConfigError(`invalid --rate ${spec.rate}: expected >= 1`);
  const model = await getModel(pool, spec.model.name, spec.model.version);
  const key = modelKey(spec.model.name, spec.model.version);
  if (!model) throw new ConfigError(`model ${key} is not registered (see vecsync models list)`);
  if (model.state === 'retired') throw new ConfigError(`model ${key} is retired`);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const created = await client.query<{ id: string }>(
      `INSERT INTO vecsync.backfills (model_name, model_version, tenant_id, rate) VALUES ($1, $2, $3, $4) RETURNING id`,
      [spec.model.name, spec.model.version, spec.tenants?.join(',') ?? null, spec.rate],
    );
    const id = created.rows[0]!.id;
    const planned = await client.query(
      `INSERT INTO vecsync.backfill_items (backfill_id, position, tenant_id, document_id)
       SELECT $1, row_number() OVER (
                ORDER BY vecsync.document_importance(d) DESC, d.updated_at, d.tenant_id, d.document_id),
              d.tenant_id, d.document_id
         FROM vecsync.documents d
        WHERE d.status = 'active' AND ($2::text[] IS NULL OR d.tenant_id = ANY($2::text[]))`,
      [id, spec.tenants],
    );
    const total = planned.rowCount ?? 0;
    await client.query(
      `UPDATE vecsync.backfills SET total = $2::bigint, state = CASE WHEN $2::bigint = 0 THEN 'done' ELSE state END,
              finished_at = CASE WHEN $2::bigint = 0 THEN now() END WHERE id = $1`,
      [id, total],
    );
    await client.query('COMMIT');
    return (await getBackfill(pool, Number(id)))!;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export async function getBackfill(db: Pick<pg.Pool, 'query'>, id: number): Promise<Backfill | undefined> {
  const res = await db.query<BackfillRow>(`SELECT ${COLUMNS} FROM vecsync.backfills WHERE id = $1`, [id]);
  return res.rows[0] ? fromRow(res.rows[0]) : undefined;
}

export async function listBackfills(db: Pick<pg.Pool, 'query'>, limit = 100): Promise<Backfill[]> {
  const res = await db.query<BackfillRow>(`SELECT ${COLUMNS} FROM vecsync.backfills ORDER BY id DESC LIMIT $1`, [
    limit,
  ]);
  return res.rows.map(fromRow);
}

/** `backfill pause ID`: the runner stops after its current slice and releases the backfill. */
export async function pauseBackfill(db: Pick<pg.Pool, 'query'>, id: number): Promise<Backfill> {
  const res = await db.query<BackfillRow>(
    `UPDATE vecsync.backfills SET state = 'paused', updated_at = now()
      WHERE id = $1 AND state IN ('running', 'paused') RETURNING ${COLUMNS}`,
    [id],
  );
  if (res.rows[0]) return fromRow(res.rows[0]);
  const existing = await getBackfill(db, id);
  if (!existing) throw new ConfigError(`no backfill ${id}`);
  throw new ConfigError(`backfill ${id} is ${existing.state}; only a running backfill can be paused`);
}

/**
 * Takes the backfill for `runner` (state running, a lease of `leaseMs`) when nobody holds it: no
 * runner, an expired lease, or a runner `isDead` says is gone (killed on this host). Returns the
 * backfill, or undefined when another live runner holds it.
 */
export async function claimBackfill(
  pool: pg.Pool,
  id: number,
  runner: string,
  leaseMs: number,
  isDead: (runner: string) => boolean,
): Promise<Backfill | undefined> {
  const existing = await getBackfill(pool, id);
  if (!existing) throw new ConfigError(`no backfill ${id}`);
  if (existing.state === 'done') return existing;
  const takeOver = existing.runner !== null && existing.runner !== runner && isDead(existing.runner);
  const res = await pool.query<BackfillRow>(
    `UPDATE vecsync.backfills
        SET state = 'running', runner = $2, lease_until = now() + make_interval(secs => $3::float8 / 1000),
            error = NULL, updated_at = now()
      WHERE id = $1 AND state <> 'done'
        AND (runner IS NULL OR runner = $2 OR lease_until < now() OR ($4::boolean AND runner = $5::text))
      RETURNING ${COLUMNS}`,
    [id, runner, leaseMs, takeOver, existing.runner],
  );
  return res.rows[0] ? fromRow(res.rows[0]) : undefined;
}

export interface StepResult {
  backfill: Backfill;
  /** Plan entries passed (deleted or archived documents count, but enqueue nothing). */
  advanced: number;
  /** Outbox rows written. */
  enqueued: number;
  /** The runner no longer holds the backfill: paused, or taken over after its lease ran out. */
  released: boolean;
}

/**
 * One slice: enqueue the next `size` plan entries on the bulk lane and advance the cursor, in one
 * transaction under the backfill's row lock. Renews the lease. A paused backfill is released.
 */
export async function stepBackfill(
  pool: pg.Pool,
  id: number,
  runner: string,
  size: number,
  leaseMs: number,
): Promise<StepResult> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const locked = await client.query<BackfillRow>(
      `SELECT ${COLUMNS} FROM vecsync.backfills WHERE id = $1 FOR UPDATE`,
      [id],
    );
    const row = locked.rows[0];
    if (!row) throw new ConfigError(`no backfill ${id}`);
    if (row.runner !== runner || row.state !== 'running') {
      if (row.runner === runner) {
        await client.query('UPDATE vecsync.backfills SET runner = NULL, lease_until = NULL WHERE id = $1', [id]);
      }
      await client.query('COMMIT');
      return { backfill: fromRow({ ...row, runner: null }), advanced: 0, enqueued: 0, released: true };
    }
    const from = Number(row.position);
    const to = Math.min(from + size, Number(row.total));
    // The subquery keeps plan order (OFFSET 0: not flattened), so outbox ids follow importance.
    const enqueued = await client.query(
      `SELECT vecsync.enqueue_upsert(d, 'bulk', $4, $5)
         FROM (SELECT d FROM vecsync.backfill_items i
                 JOIN vecsync.documents d ON d.tenant_id = i.tenant_id AND d.document_id = i.document_id
                WHERE i.backfill_id = $1 AND i.position > $2 AND i.position <= $3 AND d.status = 'active'
                ORDER BY i.position OFFSET 0) AS s(d)`,
      [id, from, to, row.model_name, row.model_version],
    );
    const finished = to >= Number(row.total);
    const updated = await client.query<BackfillRow>(
      `UPDATE vecsync.backfills
          SET position = $2, updated_at = now(),
              lease_until = now() + make_interval(secs => $3::float8 / 1000),
              state = CASE WHEN $4::boolean THEN 'done' ELSE state END,
              finished_at = CASE WHEN $4::boolean THEN now() ELSE finished_at END,
              runner = CASE WHEN $4::boolean THEN NULL ELSE runner END
        WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, to, leaseMs, finished],
    );
    if (finished) await client.query('DELETE FROM vecsync.backfill_items WHERE backfill_id = $1', [id]);
    await client.query('COMMIT');
    return {
      backfill: fromRow(updated.rows[0]!),
      advanced: to - from,
      enqueued: enqueued.rowCount ?? 0,
      released: finished,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Records a failure (state failed, runner released); `backfill resume` can restart it. */
export async function failBackfill(db: Pick<pg.Pool, 'query'>, id: number, runner: string, error: string) {
  await db.query(
    `UPDATE vecsync.backfills SET state = 'failed', error = $3, runner = NULL, lease_until = NULL, updated_at = now()
      WHERE id = $1 AND runner = $2`,
    [id, runner, error.slice(0, 2000)],
  );
}

/** Lets go of the backfill on SIGINT/SIGTERM: it is paused, and `backfill resume` takes it at once. */
export async function releaseBackfill(db: Pick<pg.Pool, 'query'>, id: number, runner: string) {
  await db.query(
    `UPDATE vecsync.backfills SET state = 'paused', runner = NULL, lease_until = NULL, updated_at = now()
      WHERE id = $1 AND runner = $2 AND state = 'running'`,
    [id, runner],
  );
}
