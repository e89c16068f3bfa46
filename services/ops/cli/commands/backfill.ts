import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { modelKey } from '../../../domain/types.ts';
import { backfillJson, runInForeground } from '../../backfill/cli.ts';
import { createBackfill, getBackfill, listBackfills, parseModelKey, pauseBackfill } from '../../backfill/store.ts';

function parseId(raw: string): number {
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 1) throw new ConfigError(`invalid backfill id ${JSON.stringify(raw)}`);
  return id;
}

function parsePort(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid --metrics-port ${raw}`);
  return port;
}

async function withPool<T>(fn: (pool: pg.Pool, config: ReturnType<typeof loadConfig>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 2, application_name: 'vecsync-backfill' });
  try {
    return await fn(pool, config);
  } finally {
    await pool.end();
  }
}

/**
 * `vecsync backfill start|pause|resume|status`: re-enqueue documents on the bulk lane for one
 * model, at a planned rate, with the cursor in PostgreSQL. `start` and `resume` run the backfill in
 * the foreground until it is done or paused (Ctrl-C pauses it); `pause` works from any terminal.
 */
export function register(program: Command): void {
  const backfill = program.command('backfill').description('operator-controlled backfills on the bulk lane');

  backfill
    .command('start')
    .description('plan a backfill (importance order, then oldest first), print its id, and run it')
    .option('--model <key>', 'model key (<name>.v<version>); default: the configured model')
    .option('--tenant <tenant>', 'only this tenant (default: all)')
    .option('--rate <n>', 'documents per second', '200')
    .option('--detach', 'only plan it and print the id; `backfill resume ID` runs it')
    .option('--metrics-port <port>', 'serve /metrics on this port while running')
    .action(async (opts: { model?: string; tenant?: string; rate: string; detach?: boolean; metricsPort?: string }) => {
      const metricsPort = parsePort(opts.metricsPort);
      await withPool(async (pool, config) => {
        const model = parseModelKey(opts.model ?? modelKey(config.embedder.model, config.embedder.version));
        const created = await createBackfill(pool, {
          model,
          tenants: opts.tenant ? [opts.tenant] : null,
          rate: Number(opts.rate),
        });
        process.stdout.write(`${created.id}\n`);
        if (opts.detach || created.state === 'done') return;
        const final = await runInForeground(pool, created.id, { metricsPort, metricsHost: config.metrics.host });
        if (final.state === 'failed') process.exitCode = 1;
      });
    });

  backfill
    .command('pause')
    .description('pause a backfill; its runner stops after the slice in flight')
    .argument('<id>')
    .action(async (raw: string) => {
      await withPool(async (pool) => {
        const b = await pauseBackfill(pool, parseId(raw));
        process.stdout.write(`backfill ${b.id} paused at ${b.done}/${b.total}\n`);
      });
    });

  backfill
    .command('resume')
    .description('resume a paused, failed or interrupted backfill from its cursor, in the foreground')
    .argument('<id>')
    .option('--metrics-port <port>', 'serve /metrics on this port while running')
    .action(async (raw: string, opts: { metricsPort?: string }) => {
      const metricsPort = parsePort(opts.metricsPort);
      await withPool(async (pool, config) => {
        const id = parseId(raw);
        const b = await getBackfill(pool, id);
        if (!b) throw new ConfigError(`no backfill ${id}`);
        if (b.state === 'done') {
          process.stdout.write(`backfill ${id} is done (${b.done}/${b.total})\n`);
          return;
        }
        const final = await runInForeground(pool, id, { metricsPort, metricsHost: config.metrics.host });
        if (final.state === 'failed') process.exitCode = 1;
      });
    });

  backfill
    .command('status')
    .description('backfills, newest first')
    .argument('[id]')
    .option('--json', 'print JSON: {"backfills": [{id, model, tenant, state, done, total, rate}]}')
    .action(async (raw: string | undefined, opts: { json?: boolean }) => {
      await withPool(async (pool) => {
        const rows =
          raw !== undefined
            ? [await getBackfill(pool, parseId(raw))].filter((b) => b !== undefined)
            : await listBackfills(pool);
        if (opts.json) {
          process.stdout.write(JSON.stringify({ backfills: rows.map(backfillJson) }) + '\n');
          return;
        }
        for (const b of rows) {
          const pct = b.total > 0 ? ((100 * b.done) / b.total).toFixed(1) : '100.0';
          process.stdout.write(
            `${String(b.id).padStart(5)}  ${b.model.padEnd(24)} ${(b.tenant ?? '*').padEnd(16)} ${b.state.padEnd(8)} ${b.done}/${b.total} (${pct}%)  ${b.rate}/s${b.error ? `  error: ${b.error}` : ''}\n`,
          );
        }
        if (rows.length === 0) process.stdout.write('no backfills\n');
      });
    });
}
