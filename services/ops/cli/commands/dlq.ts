import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../../config/index.ts';
import { guardPool } from '../../../adapters/postgres/pool.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { createLogger } from '../../../adapters/telemetry/log.ts';
import { listDeadLetters, replayDeadLetters, type DlqFilter } from '../../dlq/index.ts';
import { createKafka } from '../../../adapters/kafka/client.ts';
import { createProducer } from '../../../adapters/kafka/producer.ts';
import { SERVICES, topicsFor, type ServiceName } from '../../../adapters/kafka/topics.ts';

interface FilterOptions {
  service?: string;
  tenant?: string;
  reason?: string;
}

function filterOf(opts: FilterOptions): DlqFilter {
  if (opts.service && !SERVICES.includes(opts.service as ServiceName)) {
    throw new ConfigError(`invalid --service ${JSON.stringify(opts.service)}: expected one of ${SERVICES.join(', ')}`);
  }
  return {
    ...(opts.service ? { service: opts.service as ServiceName } : {}),
    ...(opts.tenant ? { tenant: opts.tenant } : {}),
    ...(opts.reason ? { reason: opts.reason } : {}),
  };
}

async function withClients<T>(fn: (c: ReturnType<typeof clients>) => Promise<T>): Promise<T> {
  const c = clients();
  try {
    return await fn(c);
  } finally {
    await c.pool.end();
  }
}

function clients() {
  const config = loadConfig();
  return {
    config,
    kafka: createKafka(config.kafkaBrokers, 'vecsync-dlq', createLogger('silent')),
    pool: guardPool(new pg.Pool({ connectionString: config.sourceUrl, max: 2 })),
    topics: topicsFor(config.topicPrefix),
  };
}

/** `vecsync dlq list [--json]` and `vecsync dlq replay [--service S] [--id ID|--all]`. */
export function register(program: Command): void {
  const dlq = program.command('dlq').description('dead-letter topics: what failed and why, and putting it back');
  dlq
    .command('list')
    .description('count pending dead letters by service and reason, with the most recent items')
    .option('--service <service>', `one of ${SERVICES.join(', ')}`)
    .option('--tenant <tenant>', 'only dead letters of this tenant')
    .option('--reason <reason>', 'only this reason')
    .option('--all', 'include dead letters already replayed')
    .option('--limit <n>', 'items to show', '100')
    .option('--json', 'print JSON: {total, by_service, by_reason, items}')
    .action(async (opts: FilterOptions & { all?: boolean; limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new ConfigError(`invalid --limit ${opts.limit}`);
      const report = await withClients(({ kafka, pool, topics }) =>
        listDeadLetters(kafka, pool, topics, { ...filterOf(opts), includeReplayed: opts.all ?? false }, limit),
      );
      if (opts.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      process.stdout.write(`${report.total} dead letters\n`);
      for (const [k, v] of Object.entries(report.by_service)) process.stdout.write(`  service ${k}: ${v}\n`);
      for (const [k, v] of Object.entries(report.by_reason)) process.stdout.write(`  reason ${k}: ${v}\n`);
      for (const i of report.items) process.stdout.write(`${i.id}  ${i.reason}  ${i.key ?? ''}  ${i.error}\n`);
    });
  dlq
    .command('replay')
    .description('put dead letters back on their original topic (each at most once)')
    .option('--service <service>', `one of ${SERVICES.join(', ')}`)
    .option('--tenant <tenant>', 'only dead letters of this tenant')
    .option('--reason <reason>', 'only this reason')
    .option('--id <id...>', 'dead letter ids from `vecsync dlq list` (<service>:<partition>:<offset>)')
    .option('--all', 'every pending dead letter that matches the filters')
    .option('--json', 'print JSON')
    .action(async (opts: FilterOptions & { id?: string[]; all?: boolean; json?: boolean }) => {
      if (!opts.all && !opts.id) throw new ConfigError('give --id ID or --all');
      if (opts.all && opts.id) throw new ConfigError('give --id or --all, not both');
      const result = await withClients(async ({ kafka, pool, topics }) => {
        const producer = await createProducer(kafka);
        try {
          return await replayDeadLetters(kafka, pool, producer, topics, filterOf(opts), opts.id);
        } finally {
          await producer.close();
        }
      });
      process.stdout.write(
        opts.json
          ? JSON.stringify(result) + '\n'
          : `replayed ${result.replayed}; already replayed before: ${result.alreadyReplayed}\n`,
      );
    });
}
