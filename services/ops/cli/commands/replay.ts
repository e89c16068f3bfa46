import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../adapters/telemetry/log.ts';
import { createKafka } from '../../../adapters/kafka/client.ts';
import { parseReplayTarget, resetGroup } from '../../../adapters/kafka/offsets.ts';

/**
 * `vecsync replay --group G --to-earliest|--to-datetime ISO`: replay is a consumer-offset reset.
 * The ledger makes re-applying old events a no-op, so a full replay leaves the sink unchanged.
 */
export function register(program: Command): void {
  program
    .command('replay')
    .description('reset a consumer group to the earliest offset or to a point in time (the group must be stopped)')
    .requiredOption('--group <group>', 'consumer group, e.g. vecsync.main.writer (see vecsync status)')
    .option('--to-earliest', 'replay everything still in the topics')
    .option('--to-datetime <iso>', 'replay from this time on, e.g. 2026-11-21T10:00:00Z')
    .option('--dry-run', 'show what would move, change nothing')
    .option('--json', 'print the plan as JSON')
    .action(
      async (opts: { group: string; toEarliest?: boolean; toDatetime?: string; dryRun?: boolean; json?: boolean }) => {
        const target = parseReplayTarget(opts);
        const config = loadConfig();
        const kafka = createKafka(config.kafkaBrokers, 'vecsync-replay', createLogger('silent'));
        const plan = await resetGroup(kafka, opts.group, target, opts.dryRun ?? false);
        if (opts.json) {
          process.stdout.write(JSON.stringify({ ...plan, dryRun: opts.dryRun ?? false }, null, 2) + '\n');
          return;
        }
        for (const t of plan.topics) {
          const moved = t.partitions.reduce((n, p) => n + Math.max(0, Number(p.from) - Number(p.to)), 0);
          process.stdout.write(`${t.topic}: ${t.partitions.length} partitions, ${moved} messages to replay\n`);
        }
        process.stdout.write(`${opts.dryRun ? 'would reset' : 'reset'} group ${plan.group}\n`);
      },
    );
}
