/**
 * Histories of one document as plain SQL statements, for the race and ordering tests: what an
 * application does to `vecsync.documents` and `vecsync.document_acl`, which the real triggers turn
 * into outbox rows. And the checks of what the triggers wrote:
 *
 * - the outbox sequence of a document, in outbox id order (= commit order, since every trigger
 *   path writes its rows after taking the document's lock), has content and ACL versions that
 *   never go down, and every event is newer than the one before;
 * - the outbox's final state (last content event, last ACL-carrying event) is the source state.
 */
import type pg from 'pg';
import type { Statement } from './sessions.ts';

export const PRINCIPALS = ['alice', 'bob', 'carol'] as const;
export const BODIES = [
  'Postgres replication keeps a standby in step. '.repeat(8),
  'Kubernetes autoscaling adds nodes under load. '.repeat(14),
  'Quarterly revenue forecast and budget review.',
  'Incident response: rotate credentials, patch, audit. '.repeat(20),
] as const;

export type DocOp =
  | { kind: 'insert'; body: number }
  | { kind: 'update'; body: number }
  | { kind: 'delete' }
  | { kind: 'archive' }
  | { kind: 'restore' }
  | { kind: 'softdelete' }
  | { kind: 'grant'; principal: string }
  | { kind: 'revoke'; principal: string };

export type PreState = 'absent' | 'absent_with_acl' | 'active' | 'archived' | 'tombstoned';
export const PRE_STATES: PreState[] = ['absent', 'absent_with_acl', 'active', 'archived', 'tombstoned'];

export function opLabel(op: DocOp): string {
  if (op.kind === 'insert' || op.kind === 'update') return `${op.kind} b${op.body}`;
  if (op.kind === 'grant' || op.kind === 'revoke') return `${op.kind} ${op.principal}`;
  return op.kind;
}

/** The statement an application would run for `op` on one document. */
export function statementOf(tenant: string, doc: string, op: DocOp): Statement {
  const label = opLabel(op);
  const key = [tenant, doc];
  switch (op.kind) {
    case 'insert':
      return {
        label,
        sql: `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status)
              VALUES ($1, $2, NULL, $3, 'en', 'active')`,
        params: [...key, BODIES[op.body]],
      };
    case 'update':
      return {
        label,
        sql: 'UPDATE vecsync.documents SET body = $3 WHERE tenant_id = $1 AND document_id = $2',
        params: [...key, BODIES[op.body]],
      };
    case 'delete':
      return { label, sql: 'DELETE FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2', params: key };
    case 'archive':
    case 'restore':
    case 'softdelete': {
      const status = op.kind === 'archive' ? 'archived' : op.kind === 'restore' ? 'active' : 'deleted';
      return {
        label,
        sql: 'UPDATE vecsync.documents SET status = $3 WHERE tenant_id = $1 AND document_id = $2',
        params: [...key, status],
      };
    }
    case 'grant':
      return {
        label,
        sql: `INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) VALUES ($1, $2, $3)
              ON CONFLICT DO NOTHING`,
        params: [...key, op.principal],
      };
    case 'revoke':
      return {
        label,
        sql: 'DELETE FROM vecsync.document_acl WHERE tenant_id = $1 AND document_id = $2 AND principal = $3',
        params: [...key, op.principal],
      };
  }
}

/** Brings a document to a starting state, committed, through the same triggers. */
export async function setUp(pool: pg.Pool, tenant: string, doc: string, state: PreState): Promise<void> {
  const run = (op: DocOp) => {
    const s = statementOf(tenant, doc, op);
    return pool.query(s.sql, s.params);
  };
  if (state === 'absent') return;
  await run({ kind: 'grant', principal: 'alice' });
  if (state === 'absent_with_acl') return;
  await run({ kind: 'insert', body: 0 });
  if (state === 'archived') await run({ kind: 'archive' });
  if (state === 'tombstoned') await run({ kind: 'delete' });
}

interface OutboxRow {
  id: string;
  operation: 'upsert' | 'delete' | 'acl';
  embedding_model: string | null;
  embedding_version: number | null;
  document_version: string;
  acl_version: string;
  payload: {
    version: number;
    acl_version: number;
    acl?: string[];
    reason?: string;
    status?: string;
    content_hash?: string;
  };
}

export interface SourceState {
  exists: boolean;
  status?: string;
  version?: number;
  aclVersion?: number;
  contentHash?: string;
  acl: string[];
  tombstone?: { version: number; aclVersion: number };
}

export async function sourceState(db: pg.Pool | pg.Client, tenant: string, doc: string): Promise<SourceState> {
  const d = await db.query<{ status: string; version: string; acl_version: string; hash: string }>(
    `SELECT status, version, acl_version, vecsync.content_hash(title, body) AS hash
       FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2`,
    [tenant, doc],
  );
  const acl = await db.query<{ acl: string[] }>('SELECT vecsync.current_acl($1, $2) AS acl', [tenant, doc]);
  const t = await db.query<{ version: string; acl_version: string }>(
    'SELECT version, acl_version FROM vecsync.document_tombstones WHERE tenant_id = $1 AND document_id = $2',
    [tenant, doc],
  );
  const row = d.rows[0];
  const tomb = t.rows[0];
  return {
    exists: row !== undefined,
    ...(row
      ? {
          status: row.status,
          version: Number(row.version),
          aclVersion: Number(row.acl_version),
          contentHash: row.hash,
        }
      : {}),
    acl: acl.rows[0]!.acl,
    ...(tomb ? { tombstone: { version: Number(tomb.version), aclVersion: Number(tomb.acl_version) } } : {}),
  };
}

/**
 * Problems with a document's outbox sequence and its final state (empty = fine). Checked per
 * embedding model (an upsert is one row per model; deletes and ACL events apply to all).
 */
export async function outboxProblems(db: pg.Pool | pg.Client, tenant: string, doc: string): Promise<string[]> {
  const rows = (
    await db.query<OutboxRow>(
      `SELECT id, operation, embedding_model, embedding_version, document_version, acl_version, payload
         FROM vecsync.vector_sync_outbox WHERE tenant_id = $1 AND document_id = $2 ORDER BY id`,
      [tenant, doc],
    )
  ).rows;
  const state = await sourceState(db, tenant, doc);
  const problems: string[] = [];
  const models = [
    ...new Set(
      rows.filter((r) => r.operation === 'upsert').map((r) => `${r.embedding_model}\u0000${r.embedding_version}`),
    ),
  ];
  const show = (r: OutboxRow) => `#${r.id} ${r.operation} v${r.document_version}/acl${r.acl_version}`;
  for (const model of models.length ? models : [undefined]) {
    const seq = rows.filter(
      (r) => r.operation !== 'upsert' || `${r.embedding_model}\u0000${r.embedding_version}` === model,
    );
    let prev: OutboxRow | undefined;
    let content: OutboxRow | undefined;
    let aclCarrier: OutboxRow | undefined;
    for (const r of seq) {
      const v = Number(r.document_version);
      const a = Number(r.acl_version);
      if (v !== r.payload.version || a !== r.payload.acl_version)
        problems.push(`${show(r)}: payload versions differ from the columns`);
      if (prev) {
        const pv = Number(prev.document_version);
        const pa = Number(prev.acl_version);
        if (v < pv) problems.push(`${show(r)} after ${show(prev)}: content version went down`);
        if (a < pa) problems.push(`${show(r)} after ${show(prev)}: ACL version went down`);
        if (v === pv && a === pa) problems.push(`${show(r)} after ${show(prev)}: not newer`);
        if (r.operation === 'acl' && !(a > pa)) problems.push(`${show(r)}: ACL event without a new ACL version`);
        if (r.operation !== 'acl' && !(v > pv)) problems.push(`${show(r)}: content event without a new version`);
      }
      prev = r;
      if (r.operation !== 'acl') content = r;
      if (r.operation !== 'delete') aclCarrier = r;
    }
    // Final state: the source's.
    if (state.exists && state.status === 'active') {
      if (content?.operation !== 'upsert' || Number(content.document_version) !== state.version)
        problems.push(`source is active v${state.version} but the last content event is ${content && show(content)}`);
      else if (content.payload.content_hash !== state.contentHash)
        problems.push(`last upsert ${show(content)} carries another content hash than the source`);
      const lastAcl = aclCarrier;
      if (!lastAcl || Number(lastAcl.acl_version) !== state.aclVersion)
        problems.push(`source ACL v${state.aclVersion} but the last ACL in the outbox is ${lastAcl && show(lastAcl)}`);
      else if (JSON.stringify(lastAcl.payload.acl) !== JSON.stringify(state.acl))
        problems.push(
          `source ACL is ${JSON.stringify(state.acl)} but the outbox's last is ${JSON.stringify(lastAcl.payload.acl)} (${show(lastAcl)})`,
        );
    } else if (state.exists) {
      if (content?.operation !== 'delete' || Number(content.document_version) !== state.version)
        problems.push(
          `source is ${state.status} v${state.version} but the last content event is ${content && show(content)}`,
        );
    } else if (state.tombstone) {
      if (
        content?.operation !== 'delete' ||
        content.payload.reason !== 'hard_delete' ||
        Number(content.document_version) !== state.tombstone.version
      )
        problems.push(
          `source has a tombstone v${state.tombstone.version} but the last content event is ${content && show(content)}`,
        );
    } else if (seq.length > 0) {
      problems.push(`the document never existed but the outbox has ${seq.map(show).join(', ')}`);
    }
  }
  return problems;
}
