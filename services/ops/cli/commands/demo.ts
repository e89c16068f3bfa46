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
    .action(async (opts: { documents: string; skipStack?: boolean }) => {
      const documents = Number(opts.documents);
      if (!Number.isInteger(documents) || documents < 1) throw new ConfigError(`invalid --documents ${opts.documents}`);
      await runDemo({ documents, skipStack: opts.skipStack ?? false });
      process.exit(0);
    });
}
