import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../../config/index.ts';
import { formatModelListing, modelListing } from '../../reembed/models.ts';

/** `vecsync models list [--json]`: registered embedding models, their state, and the one this sink serves. */
export function register(program: Command): void {
  const models = program.command('models').description('embedding models');
  models
    .command('list')
    .description('registered embedding models; exactly one per sink is serving (the one search uses)')
    .option('--json', 'print JSON: [{model, embedder, dimensions, chunker, state, serving}]')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 1 });
      try {
        const rows = await modelListing(pool, config);
        process.stdout.write((opts.json ? JSON.stringify(rows) : formatModelListing(rows)) + '\n');
      } finally {
        await pool.end();
      }
    });
}
