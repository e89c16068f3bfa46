import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig, type Config } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { createLogger } from '../../../adapters/telemetry/log.ts';
import { createSink, type Sink } from '../../../adapters/sinks/index.ts';
import { runInForeground } from '../../backfill/cli.ts';
import {
  compareModels,
  cutover,
  reembedModels,
  reembedStatus,
  retire,
  rollback,
  startReembed,
} from '../../reembed/index.ts';

async function withContext<T>(fn: (pool: pg.Pool, config: Config, sink: Sink) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const pool = new pg.Pool({ connectionString: config.sourceUrl, max: 2, application_name: 'vecsync-reembed' });
  const sink = await createSink(config, { log: createLogger(config.logLevel) });
  try {
    return await fn(pool, config, sink);
  } finally {
    await sink.close();
    await pool.end();
  }
}

const positive = (name: string, raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`invalid ${name} ${raw}`);
  return n;
};

/**
 * `vecsync reembed --to EMBEDDER`: blue/green re-embed of this sink (VECSYNC_SINK_NAME). The
 * new model's embedder and writer run as their own deployment
 * (`VECSYNC_EMBEDDER=<to> VECSYNC_EMBEDDING_MODEL=<name> VECSYNC_EMBEDDING_VERSION=<v> vecsync run embedder`
 * and `... run writer`); `reembed --to` prints the exact settings.
 */
export function register(program: Command): void {
  const reembed = program
    .command('reembed')
    .description('blue/green re-embed: --to EMBEDDER | status | compare | cutover | rollback | retire')
    .option('--to <embedder>', 'embedder of the next model version (hashing, openai, minilm)')
    .option('--model <name>', 'name of the new model (default: same name when the embedder and dimensions are)')
    .option('--dimensions <n>', 'dimensions of the new model')
    .option('--rate <n>', 'backfill rate, documents per second', '200')
    .option('--tenant <tenant>', 'backfill only this tenant (a staged re-embed)')
    .option('--detach', 'register and plan only; run the backfill with vecsync backfill resume ID')
    .action(
      async (opts: {
        to?: string;
        model?: string;
        dimensions?: string;
        rate: string;
        detach?: boolean;
        tenant?: string;
      }) => {
        if (!opts.to)
          throw new ConfigError('reembed: give --to EMBEDDER, or one of status, compare, cutover, rollback, retire');
        await withContext(async (pool, config, sink) => {
          const { reembed: r, model } = await startReembed(pool, config, sink, {
            to: opts.to!,
            ...(opts.model ? { name: opts.model } : {}),
            ...(opts.dimensions ? { dimensions: positive('--dimensions', opts.dimensions) } : {}),
            rate: positive('--rate', opts.rate),
            ...(opts.tenant ? { tenants: [opts.tenant] } : {}),
          });
          process.stdout.write(
            `${JSON.stringify({ id: r.id, from: r.from.key, to: r.to.key, backfill: r.backfillId })}\n`,
          );
          process.stderr.write(
            `re-embed ${r.id}: ${r.from.key} → ${r.to.key} (index created). Run its pipeline:\n` +
              `  VECSYNC_EMBEDDER=${model.embedder} VECSYNC_EMBEDDING_MODEL=${model.name} VECSYNC_EMBEDDING_VERSION=${model.version} VECSYNC_EMBEDDING_DIMENSIONS=${model.dimensions} vecsync run embedder\n` +
              `  (same settings) vecsync run writer\n`,
          );
          if (opts.detach || r.backfillId === null) return;
          await runInForeground(pool, r.backfillId);
          await reembedStatus(pool, config);
        });
      },
    );

  reembed
    .command('status')
    .description('the latest re-embed of this sink')
    .option('--json', 'print JSON: {from, to, state, done, total}')
    .action(async (opts: { json?: boolean }) => {
      await withContext(async (pool, config) => {
        const s = await reembedStatus(pool, config);
        process.stdout.write(
          opts.json
            ? JSON.stringify(s) + '\n'
            : `re-embed ${s.id} (${s.sink}): ${s.from} → ${s.to}  ${s.state}  backfill ${s.done}/${s.total}  serving ${s.serving}\n`,
        );
      });
    });

  reembed
    .command('compare')
    .description('dry-run compare before cutover: documents, versions, ACLs, top-k overlap, golden-set recall')
    .option('--json', 'print JSON')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--queries <n>', 'sampled queries for the top-k overlap', '20')
    .option('--top <k>', 'k of top-k and recall@k', '10')
    .action(async (opts: { json?: boolean; tenant?: string; queries: string; top: string }) => {
      await withContext(async (pool, config, sink) => {
        const { from, to } = await reembedModels(pool, config);
        const c = await compareModels(pool, config, sink, from, to, {
          // `--tenant` after `compare` may be taken by the parent `reembed` (its backfill option).
          ...((opts.tenant ?? reembed.opts<{ tenant?: string }>().tenant)
            ? { tenant: opts.tenant ?? reembed.opts<{ tenant?: string }>().tenant! }
            : {}),
          queries: positive('--queries', opts.queries),
          k: positive('--top', opts.top),
        });
        if (opts.json) {
          process.stdout.write(JSON.stringify(c) + '\n');
          return;
        }
        const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
        process.stdout.write(
          [
            `compare ${c.from} (old) → ${c.to} (new)`,
            `  documents: old ${c.documents.old}, new ${c.documents.new}, missing in new ${c.documents.missing_in_new}, extra in new ${c.documents.extra_in_new}`,
            `  version mismatch ${c.version_mismatch}, ACL mismatch ${c.acl_mismatch}`,
            `  top-${c.topk.k} overlap ${pct(c.topk_overlap)} over ${c.topk.queries} sampled queries`,
            `  recall@${c.recall.k} (${c.recall.queries} golden queries): old ${pct(c.recall.old)}, new ${pct(c.recall.new)}`,
            `  ${c.clean ? 'clean: ready for cutover' : 'NOT clean'}`,
          ].join('\n') + '\n',
        );
      });
    });

  reembed
    .command('cutover')
    .description('switch search to the new model in one step (the compare must be clean)')
    .option('--force', 'skip the readiness check')
    .action(async (opts: { force?: boolean }) => {
      await withContext(async (pool, config, sink) => {
        const { reembed: r } = await cutover(pool, config, sink, { force: opts.force ?? false });
        process.stdout.write(`re-embed ${r.id}: ${r.to.key} serves sink ${r.sink}\n`);
      });
    });

  reembed
    .command('rollback')
    .description('switch search back to the old model; both indexes are kept')
    .action(async () => {
      await withContext(async (pool, config) => {
        const r = await rollback(pool, config);
        process.stdout.write(`re-embed ${r.id}: ${r.from.key} serves sink ${r.sink} again\n`);
      });
    });

  reembed
    .command('retire')
    .description('retire the old model and drop its index, once the new one has served for the grace period')
    .option('--grace <seconds>', 'how long the new model must have served', '86400')
    .action(async (opts: { grace: string }) => {
      await withContext(async (pool, config, sink) => {
        const r = await retire(pool, config, sink, positive('--grace', opts.grace));
        process.stdout.write(`re-embed ${r.id}: ${r.from.key} retired, its index dropped\n`);
      });
    });
}
