import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { modelKey } from '../../../domain/types.ts';
import { createLogger } from '../../../adapters/telemetry/log.ts';
import { createSink } from '../../../adapters/sinks/index.ts';

/** `vecsync inspect vectors --tenant T [--document D] --json`: what the sink holds, chunk by chunk. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('inspect what the sink holds')
    .argument('<what>', 'vectors')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--document <document>', 'one document id')
    .option('--model <modelKey>', 'model key (default: the active model)')
    .option('--json', 'print JSON (an array of chunks)')
    .action(async (what: string, opts: { tenant: string; document?: string; model?: string; json?: boolean }) => {
      if (what !== 'vectors') throw new Error(`unknown inspect target '${what}': expected vectors`);
      const config = loadConfig();
      const sink = await createSink(config, { log: createLogger(config.logLevel) });
      try {
        const index = {
          modelKey: opts.model ?? modelKey(config.embedder.model, config.embedder.version),
          dimensions: config.embedder.dimensions,
        };
        const chunks = await sink.inspect(index, opts.tenant, opts.document);
        if (opts.json) {
          process.stdout.write(JSON.stringify(chunks, null, 2) + '\n');
          return;
        }
        for (const c of chunks) {
          process.stdout.write(
            `${c.tenant_id}:${c.document_id}#${c.chunk_index}  v${c.document_version}  acl v${c.acl_version} [${c.acl.join(', ')}]  ${c.content_hash.slice(0, 12)}\n`,
          );
        }
        process.stdout.write(`${chunks.length} chunks\n`);
      } finally {
        await sink.close();
      }
    });
}
