import type { Command } from 'commander';
import { CONFIG_VARIABLES, loadConfig, SECRET_VARIABLES } from '../../../config/index.ts';
import { redactSecrets } from '../../../domain/errors.ts';

/** `vecsync config [--markdown]`: validates the environment and prints the effective configuration. */
export function register(program: Command): void {
  program
    .command('config')
    .description('validate the environment and print the effective configuration (secrets redacted)')
    .option('--markdown', 'print the table of every variable for the README')
    .action((opts: { markdown?: boolean }) => {
      if (opts.markdown) {
        const rows = Object.entries(CONFIG_VARIABLES).map(([name, spec]) => {
          const d = 'default' in spec ? spec.default : '';
          const shown = typeof d === 'function' ? 'derived from the ports' : `\`${d}\``;
          return `| \`${name}\` | ${shown} | ${spec.doc} |`;
        });
        process.stdout.write(['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n') + '\n');
        return;
      }
      const config = loadConfig();
      const shown = Object.fromEntries(
        Object.entries(config.raw).map(([k, v]) => [
          k,
          SECRET_VARIABLES.includes(k) && v ? '<redacted>' : typeof v === 'string' ? redactSecrets(v) : v,
        ]),
      );
      process.stdout.write(JSON.stringify(shown, null, 2) + '\n');
    });
}
