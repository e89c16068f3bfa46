import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import pg from 'pg';
import { ConfigError } from '../../../domain/errors.ts';
import { createLogger } from '../../../adapters/telemetry/log.ts';
import { createEmbedder } from '../../../adapters/embedding/index.ts';
import { createSink } from '../../../adapters/sinks/index.ts';
import { servingModel } from '../../../adapters/postgres/models.ts';

/**
 * `vecsync search --tenant T --principal P [--top K] "text"`: a kNN that only returns chunks the
 * tenant and principal may see. Both are required: there is no unfiltered search.
 */
export function register(program: Command): void {
  program
    .command('search')
    .description('permission-filtered semantic search')
    .argument('<text>', 'query text')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--principal <principal>', 'principal (user or group) searching')
    .option('--top <k>', 'results to return', '5')
    .option('--json', 'print JSON: [{document_id, chunk_index, score}] best first')
    .action(async (text: string, opts: { tenant: string; principal: string; top: string; json?: boolean }) => {
      const topK = Number(opts.top);
      if (!Number.isInteger(topK) || topK < 1 || topK > 1000)
        throw new ConfigError(`invalid --top ${opts.top}: expected 1..1000`);
      const config = loadConfig();
      const log = createLogger(config.logLevel);
      // The model this sink serves (`vecsync models list`), switched by `vecsync reembed cutover`.
      const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 1 });
      const model = await servingModel(pool, config.sink.name, {
        name: config.embedder.model,
        version: config.embedder.version,
      }).finally(() => pool.end());
      if (!model) throw new ConfigError(`sink ${config.sink.name} serves no registered model; run vecsync migrate`);
      const embedder = createEmbedder({
        ...config.embedder,
        type: model.embedder,
        dimensions: model.dimensions,
        retry: config.retry,
        log,
      });
      const sink = await createSink(config, { log });
      try {
        const [vector] = await embedder.embed([text]);
        const hits = await sink.search({
          modelKey: model.modelKey,
          tenantId: opts.tenant,
          principal: opts.principal,
          vector: vector!,
          topK,
        });
        if (opts.json) {
          process.stdout.write(
            JSON.stringify(
              hits.map((h) => ({ document_id: h.documentId, chunk_index: h.chunkIndex, score: h.score })),
            ) + '\n',
          );
          return;
        }
        for (const h of hits) process.stdout.write(`${h.score.toFixed(4)}  ${h.documentId}#${h.chunkIndex}\n`);
        if (hits.length === 0) process.stdout.write('no results\n');
      } finally {
        await sink.close();
      }
    });
}
