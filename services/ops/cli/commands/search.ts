import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { createLogger } from '../../../adapters/telemetry/log.ts';
import { createEmbedder } from '../../../adapters/embedding/index.ts';
import { createSink } from '../../../adapters/sinks/index.ts';
import { servingModel } from '../../../adapters/postgres/models.ts';
import { pgvectorConfigFrom } from '../../../adapters/sinks/pgvector/config.ts';
import { PgvectorHybridSearch } from '../../../adapters/sinks/pgvector/hybrid.ts';

interface SearchOptions {
  tenant: string;
  principal: string;
  top: string;
  json?: boolean;
  hybrid?: boolean;
  textConfig: string;
}

/**
 * `vecsync search --tenant T --principal P [--top K] [--hybrid] "text"`: a kNN (or, with
 * `--hybrid` on pgvector, kNN and full-text fused by reciprocal rank fusion) that only returns
 * chunks the tenant and principal may see. Both are required: there is no unfiltered search.
 */
export function register(program: Command): void {
  program
    .command('search')
    .description('permission-filtered semantic search (--hybrid: semantic + full-text, pgvector)')
    .argument('<text>', 'query text')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--principal <principal>', 'principal (user or group) searching')
    .option('--top <k>', 'results to return', '5')
    .option('--hybrid', 'fuse vector and PostgreSQL full-text results by reciprocal rank fusion (pgvector)')
    .option('--text-config <config>', 'PostgreSQL text search configuration of --hybrid', 'simple')
    .option('--json', 'print JSON: [{document_id, chunk_index, score}] best first')
    .action(async (text: string, opts: SearchOptions) => {
      const topK = Number(opts.top);
      if (!Number.isInteger(topK) || topK < 1 || topK > 1000)
        throw new ConfigError(`invalid --top ${opts.top}: expected 1..1000`);
      const config = loadConfig();
      if (opts.hybrid && config.sink.type !== 'pgvector')
        throw new ConfigError(`--hybrid needs the pgvector sink (VECSYNC_SINK=${config.sink.type})`);
      if (!/^[a-z_][a-z0-9_]*$/.test(opts.textConfig))
        throw new ConfigError(`invalid --text-config ${opts.textConfig}: expected a text search configuration name`);
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
      const [vector] = await embedder.embed([text]);
      const query = {
        modelKey: model.modelKey,
        tenantId: opts.tenant,
        principal: opts.principal,
        vector: vector!,
        topK,
      };
      let hits: {
        documentId: string;
        chunkIndex: number;
        score: number;
        vectorRank?: number | null;
        textRank?: number | null;
      }[];
      if (opts.hybrid) {
        const hybrid = new PgvectorHybridSearch(pgvectorConfigFrom(config));
        try {
          hits = await hybrid.search({ ...query, text, textSearchConfig: opts.textConfig });
        } finally {
          await hybrid.close();
        }
      } else {
        const sink = await createSink(config, { log });
        try {
          hits = await sink.search(query);
        } finally {
          await sink.close();
        }
      }
      if (opts.json) {
        process.stdout.write(
          JSON.stringify(
            hits.map((h) => ({
              document_id: h.documentId,
              chunk_index: h.chunkIndex,
              score: h.score,
              ...(opts.hybrid ? { vector_rank: h.vectorRank ?? null, text_rank: h.textRank ?? null } : {}),
            })),
          ) + '\n',
        );
        return;
      }
      for (const h of hits) process.stdout.write(`${h.score.toFixed(4)}  ${h.documentId}#${h.chunkIndex}\n`);
      if (hits.length === 0) process.stdout.write('no results\n');
    });
}
