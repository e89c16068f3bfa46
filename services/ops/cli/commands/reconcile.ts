import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { modelKey } from '../../../domain/types.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { reconcile, reconcilerDeps } from '../../../pipeline/reconciler/index.ts';
import { formatReport, reportHasDrift } from '../../../pipeline/reconciler/report.ts';
import { createRuntime } from '../../../pipeline/runtime/index.ts';
import { createSink } from '../../../adapters/sinks/index.ts';

/** Exit code of `--fail-on-drift` when drift was found (1 stays "the command failed"). */
export const DRIFT_EXIT_CODE = 2;

interface ReconcileOpts {
  dryRun?: boolean;
  repair?: boolean;
  json?: boolean;
  tenant: string[];
  failOnDrift?: boolean;
  settleMs?: string;
  samples?: string;
  model?: string;
}

function nonNegativeInt(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`invalid ${name} ${JSON.stringify(value)}: expected an integer >= 0`);
  return Number(value);
}

/**
 * `vecsync reconcile [--dry-run|--repair] [--json] [--tenant T]... [--fail-on-drift]`: one pass of
 * the reconciler. Without `--repair` nothing is changed (`--dry-run` says so explicitly, the
 * pre-cutover compare mode). Exit code 0 whether or not drift is found; `--fail-on-drift` makes it
 * 2 when it is (for scripts and CI).
 */
export function register(program: Command): void {
  program
    .command('reconcile')
    .description('compare the sink and the state topic with the source of truth; optionally repair')
    .option('--dry-run', 'report only, change nothing (the default)')
    .option('--repair', 're-enqueue events for the drift found (ghosts and ACLs on priority, content on bulk)')
    .option('--json', 'print the report as JSON')
    .option(
      '--tenant <tenant>',
      'reconcile this tenant only (repeatable)',
      (value: string, all: string[]) => [...all, value],
      [],
    )
    .option('--fail-on-drift', `exit with code ${DRIFT_EXIT_CODE} when drift is found`)
    .option(
      '--settle-ms <ms>',
      'documents changed within this window are in flight (default VECSYNC_RECONCILE_SETTLE_MS)',
    )
    .option('--samples <n>', 'document keys listed per kind', '10')
    .option('--model <modelKey>', 'model index to reconcile (default: the active model)')
    .action(async (opts: ReconcileOpts) => {
      if (opts.dryRun && opts.repair) throw new ConfigError('--dry-run and --repair exclude each other');
      const config = loadConfig();
      const settleMs =
        opts.settleMs === undefined ? config.reconcile.settleMs : nonNegativeInt('--settle-ms', opts.settleMs);
      const sampleSize = nonNegativeInt('--samples', opts.samples ?? '10');
      const rt = await createRuntime(config, 'reconcile');
      const sink = await createSink(config, { log: rt.log });
      try {
        const index = {
          modelKey: opts.model ?? modelKey(config.embedder.model, config.embedder.version),
          dimensions: config.embedder.dimensions,
        };
        const report = await reconcile(await reconcilerDeps(rt, sink, index), {
          tenants: opts.tenant,
          repair: opts.repair === true,
          settleMs,
          sampleSize,
        });
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report) + '\n');
        if (opts.failOnDrift && reportHasDrift(report)) {
          process.stderr.write(
            `vecsync: drift found (${
              Object.entries(report.drift)
                .filter(([, n]) => n > 0)
                .map(([k, n]) => `${k} ${n}`)
                .join(', ') || 'state topic only'
            })\n`,
          );
          process.exitCode = DRIFT_EXIT_CODE;
        }
      } finally {
        await sink.close().catch(() => undefined);
        await rt.close();
      }
    });
}
