import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { createSink } from '../../../adapters/sinks/index.ts';
import { listModels } from '../../../adapters/postgres/models.ts';
import { startMetricsServer } from '../../../adapters/telemetry/metrics.ts';
import { formatModelListing, modelListing } from '../../reembed/models.ts';
import { embedderFor } from '../../reembed/index.ts';
import { addGoldenQueries, scoreRecall, type RecallScore } from '../../reembed/recall.ts';

const count = (name: string, raw: string, min: number) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`invalid ${name} ${raw}`);
  return n;
};

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

  const golden = models
    .command('golden')
    .description('the golden retrieval set: (query, expected document) per tenant');
  golden
    .command('add')
    .description('register a golden query (the same triple twice is one row)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--query <text>', 'query text')
    .requiredOption('--expected <document>', 'document id the query should find')
    .option('--principal <principal>', 'who searches (default: the first principal of the expected document)')
    .action(async (opts: { tenant: string; query: string; expected: string; principal?: string }) => {
      const config = loadConfig();
      const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 1 });
      try {
        await addGoldenQueries(pool, [
          { tenant: opts.tenant, query: opts.query, expected: opts.expected, principal: opts.principal ?? null },
        ]);
      } finally {
        await pool.end();
      }
    });

  models
    .command('recall')
    .description('score recall@k of the golden set for every non-retired model of this sink (vecsync_retrieval_recall)')
    .option('--top <k>', 'k', '10')
    .option('--json', 'print JSON: [{model, k, queries, hits, tenants: [{tenant, queries, hits, recall}]}]')
    .option('--every <seconds>', 'keep scoring on this schedule, serving /metrics (VECSYNC_METRICS_PORT)')
    .action(async (opts: { top: string; json?: boolean; every?: string }) => {
      const config = loadConfig();
      const k = count('--top', opts.top, 1);
      const every = opts.every === undefined ? undefined : count('--every', opts.every, 1);
      const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 2 });
      const sink = await createSink(config);
      const server = every ? await startMetricsServer(config.metrics.host, config.metrics.port) : undefined;
      try {
        for (;;) {
          const scores: RecallScore[] = [];
          for (const model of (await listModels(pool)).filter((m) => m.state !== 'retired')) {
            scores.push(await scoreRecall(pool, sink, model, embedderFor(config, model), { k }));
          }
          process.stdout.write(
            opts.json
              ? JSON.stringify(scores) + '\n'
              : scores
                  .map(
                    (s) =>
                      `${s.model}: recall@${s.k} ${s.queries > 0 ? ((100 * s.hits) / s.queries).toFixed(1) + '%' : 'n/a'} (${s.hits}/${s.queries})`,
                  )
                  .join('\n') + '\n',
          );
          if (!every) return;
          await new Promise((r) => setTimeout(r, every * 1000));
        }
      } finally {
        await server?.close();
        await sink.close();
        await pool.end();
      }
    });
}
