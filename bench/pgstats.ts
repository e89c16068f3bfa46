/**
 * What a benchmark phase asked of PostgreSQL, from its cumulative statistics views: transactions
 * per database and row changes per table. Divided by the documents of the phase, it shows the
 * database work each document costs (round trips are at least the transactions).
 */
import pg from 'pg';

export interface PgCounters {
  databases: Map<string, { commits: number; rollbacks: number }>;
  tables: Map<string, { inserted: number; updated: number; deleted: number; hotUpdated: number }>;
}

async function readCounters(urls: string[]): Promise<PgCounters> {
  const databases = new Map<string, { commits: number; rollbacks: number }>();
  const tables = new Map<string, { inserted: number; updated: number; deleted: number; hotUpdated: number }>();
  for (const url of urls) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // The statistics are read in a transaction snapshot; clear it so each read is current.
      await client.query('SELECT pg_stat_clear_snapshot()');
      const db = await client.query<{ datname: string; xact_commit: string; xact_rollback: string }>(
        'SELECT datname, xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()',
      );
      for (const r of db.rows)
        databases.set(r.datname, { commits: Number(r.xact_commit), rollbacks: Number(r.xact_rollback) });
      const t = await client.query<{
        name: string;
        n_tup_ins: string;
        n_tup_upd: string;
        n_tup_del: string;
        n_tup_hot_upd: string;
      }>(
        `SELECT current_database() || ':' || schemaname || '.' || relname AS name, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd
           FROM pg_stat_user_tables WHERE schemaname LIKE 'vecsync%'`,
      );
      for (const r of t.rows)
        tables.set(r.name, {
          inserted: Number(r.n_tup_ins),
          updated: Number(r.n_tup_upd),
          deleted: Number(r.n_tup_del),
          hotUpdated: Number(r.n_tup_hot_upd),
        });
    } finally {
      await client.end();
    }
  }
  return { databases, tables };
}

export interface PgWork {
  /** Per database: transactions committed during the phase, and per document. */
  databases: { database: string; commits: number; perDocument: number }[];
  /** Tables with row changes during the phase, per document. */
  tables: { table: string; inserted: number; updated: number; deleted: number; changesPerDocument: number }[];
}

export async function pgWork<T>(urls: string[], documents: (value: T) => number, work: () => Promise<T>) {
  const before = await readCounters(urls);
  const value = await work();
  // Statistics reach the views when a backend reports them (at most every second when busy).
  await new Promise((r) => setTimeout(r, 1500));
  const after = await readCounters(urls);
  const n = Math.max(1, documents(value));
  const pgwork: PgWork = {
    databases: [...after.databases].map(([database, a]) => {
      const commits = a.commits - (before.databases.get(database)?.commits ?? 0);
      return { database, commits, perDocument: commits / n };
    }),
    tables: [...after.tables]
      .map(([table, a]) => {
        const b = before.tables.get(table) ?? { inserted: 0, updated: 0, deleted: 0, hotUpdated: 0 };
        const inserted = a.inserted - b.inserted;
        const updated = a.updated - b.updated;
        const deleted = a.deleted - b.deleted;
        return { table, inserted, updated, deleted, changesPerDocument: (inserted + updated + deleted) / n };
      })
      .filter((t) => t.inserted + t.updated + t.deleted > 0)
      .sort((x, y) => y.changesPerDocument - x.changesPerDocument),
  };
  return { value, pg: pgwork };
}

export function formatPgWork(w: PgWork): string {
  return [
    `  PostgreSQL: ${w.databases.map((d) => `${d.database} ${d.commits} transactions (${d.perDocument.toFixed(2)} per document)`).join(', ')}`,
    ...w.tables.map(
      (t) =>
        `    ${t.table}: +${t.inserted} ~${t.updated} -${t.deleted} rows (${t.changesPerDocument.toFixed(2)} per document)`,
    ),
  ].join('\n');
}
