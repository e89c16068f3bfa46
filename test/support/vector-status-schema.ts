/**
 * Applies the Up section of migration 0010 (idempotent) to the shared source database, under an
 * advisory lock, so the vector_status tests run whether or not `vecsync migrate` of this tree has
 * run there yet (the shared database may hold other branches' migrations, which this tree's
 * migrate refuses to run past).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../migrations/source/0010_vector-status.sql',
);

export async function ensureVectorStatusSchema(sourceUrl: string): Promise<void> {
  const text = await readFile(FILE, 'utf8');
  const up = text.slice(text.indexOf('-- Up Migration'), text.indexOf('-- Down Migration'));
  const client = new pg.Client({ connectionString: sourceUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('vecsync.test.migration_0010'))`);
    await client.query(up);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}
