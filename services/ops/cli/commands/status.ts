import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { collectStatus, formatStatus } from '../../status/index.ts';

/** `vecsync status [--json]`: components, lag and oldest unapplied age, DLQ sizes, WAL retained, outbox backlog. */
export function register(program: Command): void {
  program
    .command('status')
    .description(
      'pipeline status: components, lag, oldest unapplied event age, DLQ sizes, WAL retained, outbox backlog',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const status = await collectStatus(loadConfig());
      process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status) + '\n');
      if (status.errors.length > 0) process.exitCode = 1;
    });
}
