import type { Command } from 'commander';
import { ConfigError } from '../../../domain/errors.ts';
import { runDemo } from '../../demo/index.ts';

/** `vecsync demo` (what `npm start` runs). */
export function register(program: Command): void {
  program
    .command('demo')
    .description('bring the local stack up, sync a demo corpus, search it with permissions, measure freshness')
    .option('--documents <n>', 'documents in the corpus', '1200')
    .option('--skip-stack', 'assume the stack is up, migrated and the connector applied')
    .option('--reembed', 'then a blue/green re-embed: compare with recall, cutover, a search before and after')
    .option('--reembed-to <embedder>', 'embedder of the re-embed', 'hashing')
    .option('--reembed-dimensions <n>', 'dimensions of the re-embed model', '256')
    .action(
      async (opts: {
        documents: string;
        skipStack?: boolean;
        reembed?: boolean;
        reembedTo: string;
        reembedDimensions: string;
      }) => {
        const documents = Number(opts.documents);
        if (!Number.isInteger(documents) || documents < 1)
          throw new ConfigError(`invalid --documents ${opts.documents}`);
        await runDemo({ documents, skipStack: opts.skipStack ?? false });
        if (opts.reembed) {
          const { runReembedDemo } = await import('../../reembed/demo.ts');
          await runReembedDemo({ to: opts.reembedTo, dimensions: Number(opts.reembedDimensions) });
        }
        process.exit(0);
      },
    );
}
