import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { DATABASES, migrate, type DatabaseRole, type MigrateReport } from '../../migrate/index.ts';

interface MigrateOpts {
  down?: string | true;
  only?: string;
  json?: boolean;
}

function parseDownCount(value: string | true): number {
  if (value === true) return 1;
  if (value === 'all') return Number.POSITIVE_INFINITY;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`invalid --down ${value}: a positive integer or "all"`);
  return n;
}

function summary(report: MigrateReport): string {
  const n = (report.source?.applied.length ?? 0) + (report.sink?.applied.length ?? 0);
  const verb = report.direction === 'up' ? 'applied' : 'reverted';
  return `${n} migration${n === 1 ? '' : 's'} ${verb}${report.changed ? '' : '; nothing to do'}`;
}

/** `vecsync migrate [--down [N]] [--only source|sink] [--json]` */
export function register(program: Command): void {
  program
    .command('migrate')
    .description(
      'create the databases if missing, run the source and sink migrations, sync the metadata allowlist and register the embedding model',
    )
    .option('--down [n]', 'revert the last N migrations of each database (default 1; "all" for every one)')
    .option('--only <database>', `migrate one database only (${DATABASES.join('|')})`)
    .option('--json', 'print the report as JSON')
    .action(async (opts: MigrateOpts) => {
      if (opts.only !== undefined && !(DATABASES as readonly string[]).includes(opts.only)) {
        throw new ConfigError(`invalid --only ${opts.only}: expected ${DATABASES.join(' or ')}`);
      }
      const config = loadConfig();
      const json = opts.json === true;
      const report = await migrate(config, {
        direction: opts.down === undefined ? 'up' : 'down',
        ...(opts.down === undefined ? {} : { count: parseDownCount(opts.down) }),
        ...(opts.only === undefined ? {} : { only: opts.only as DatabaseRole }),
        log: (line) => {
          if (!json) process.stdout.write(`${line}\n`);
        },
      });
      if (json) {
        const applied = (report.source?.applied.length ?? 0) + (report.sink?.applied.length ?? 0);
        process.stdout.write(`${JSON.stringify({ ...report, migrations: applied }, null, 2)}\n`);
      } else {
        process.stdout.write(`${summary(report)}\n`);
      }
    });
}
