import type { Command } from 'commander';
import { configVariables, describeConfig, loadConfig } from '../../../config/index.ts';

/** `vecsync config [--markdown]`: validates the environment and prints the effective configuration. */
export function register(program: Command): void {
  program
    .command('config')
    .description('validate the environment and print the effective configuration (secrets redacted)')
    .option('--markdown', 'print the table of every variable for the README')
    .action((opts: { markdown?: boolean }) => {
      if (opts.markdown) {
        const rows = configVariables().map((v) => {
          const shown = v.default === 'derived' ? 'derived from the ports' : `\`${v.default}\``;
          return `| \`${v.env}\` | ${shown} | ${v.doc} |`;
        });
        process.stdout.write(['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n') + '\n');
        return;
      }
      process.stdout.write(JSON.stringify(describeConfig(loadConfig()), null, 2) + '\n');
    });
}
