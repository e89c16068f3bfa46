import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { applyConnectors, connectorStatus } from '../../connect/apply.ts';
import { redactConnectorConfig, renderConnectorFromConfig } from '../../connect/render.ts';
import { readSlot } from '../../connect/slot.ts';
import { DEFAULT_PARTITIONS } from '../../../adapters/kafka/admin.ts';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`invalid ${name} ${value}: a positive integer`);
    return n;
  };
}

/** `vecsync connectors apply|status|render` */
export function register(program: Command): void {
  const connectors = program.command('connectors').description('the Debezium outbox connector and the topics it feeds');

  connectors
    .command('apply')
    .description(
      'create the pipeline topics, put the connector config when it differs from the live one, and wait until it runs',
    )
    .option(
      '--partitions <n>',
      'partitions of the lane and state topics (only when they are created)',
      positiveInt('--partitions'),
      DEFAULT_PARTITIONS,
    )
    .option('--timeout <seconds>', 'how long to wait for the connector to run', positiveInt('--timeout'), 120)
    .option('--json', 'print the report as JSON')
    .action(async (opts: { partitions: number; timeout: number; json?: boolean }) => {
      const config = loadConfig();
      const json = opts.json === true;
      const report = await applyConnectors(config, {
        partitions: opts.partitions,
        timeoutMs: opts.timeout * 1000,
        log: (line) => {
          if (!json) process.stdout.write(`${line}\n`);
        },
      });
      if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else process.stdout.write(report.changed ? 'connector applied\n' : 'nothing to do: connector config unchanged\n');
    });

  connectors
    .command('status')
    .description('state of the connector and its tasks, config drift, and its replication slot')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const report = await connectorStatus(config, (slot) => readSlot(config.sourceUrl, slot));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const lines = [`connector ${report.connector}: ${report.exists ? report.status!.state : 'not found'}`];
        for (const t of report.status?.tasks ?? []) {
          lines.push(`  task ${t.id}: ${t.state} on ${t.worker_id}${t.trace ? ` (${t.trace})` : ''}`);
        }
        if (report.config_in_sync === false)
          lines.push(`  config differs from the rendered one: ${report.changed_keys!.join(', ')}`);
        if (report.slot) {
          const s = report.slot;
          lines.push(
            s.exists
              ? `slot ${s.slot_name}: ${s.active ? 'active' : 'inactive'}, wal_status ${s.wal_status ?? '-'}, confirmed ${s.confirmed_flush_lsn}, retains ${s.retained_wal_bytes} bytes of WAL` +
                  (s.wal_status === 'lost' ? ' (lost: `vecsync connectors apply` drops it and re-snapshots)' : '')
              : `slot ${s.slot_name}: does not exist`,
          );
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (!report.running) {
        process.exitCode = 1;
        if (!opts.json)
          process.stderr.write(`vecsync: ${report.failure ?? `connector ${report.connector} is not running`}\n`);
      }
    });

  connectors
    .command('render')
    .description('print the connector config rendered from connectors/vecsync-outbox.json (secrets redacted)')
    .action(async () => {
      const rendered = await renderConnectorFromConfig(loadConfig());
      process.stdout.write(
        `${JSON.stringify({ name: rendered.name, config: redactConnectorConfig(rendered.config) }, null, 2)}\n`,
      );
    });
}
