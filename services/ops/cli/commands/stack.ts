import type { Command } from 'commander';
import { loadConfig, stackSettings } from '../../../config/index.ts';
import { statusLine } from '../../../stack/format.ts';
import { stackDown, stackStatus, stackUp } from '../../../stack/stack.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);

/** `vecsync stack up|down|status [--json]`: the local stack (PostgreSQL+pgvector, Kafka, registry, Connect). */
export function register(program: Command): void {
  const stack = program
    .command('stack')
    .description(
      'run the local stack: PostgreSQL 15 + pgvector, Kafka (KRaft), Apicurio Registry, Kafka Connect + Debezium',
    );

  stack
    .command('up')
    .description('download, build and start whatever is not running yet; waits until each component is healthy')
    .action(async () => {
      await stackUp(stackSettings(loadConfig()), say);
    });

  stack
    .command('down')
    .description('stop the processes this stack started (pid files); data is kept')
    .action(async () => {
      await stackDown(stackSettings(loadConfig()), say);
    });

  stack
    .command('status')
    .description('show each component: up|down|unhealthy, version, port, pid, log file (exit 0 even when down)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const status = await stackStatus(stackSettings(loadConfig()));
      if (opts.json) {
        say(JSON.stringify(status, null, 2));
        return;
      }
      for (const s of Object.values(status.components)) say(statusLine(s));
      say(`logs: ${status.logs}`);
    });
}
