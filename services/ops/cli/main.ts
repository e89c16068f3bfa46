/**
 * `vecsync` entry point. Each file in ./commands registers one top-level command (listed in
 * ./commands/index.ts). Every failure ends as one line on stderr and a non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { describeError } from '../../domain/errors.ts';
import { COMMANDS } from './commands/index.ts';

/**
 * Only the command being run is loaded and registered in full; for anything else (`--help`, a
 * typo) every command is listed by its summary.
 */
async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('vecsync')
    .description('Keep a vector store in step with PostgreSQL through an outbox, Debezium and Kafka.')
    .showHelpAfterError()
    .exitOverride();
  const invoked = COMMANDS.find((c) => c.name === argv[2]);
  if (invoked) {
    (await invoked.load()).register(program);
  } else {
    for (const c of COMMANDS) program.command(c.name).description(c.summary);
  }
  return program;
}

async function main(): Promise<void> {
  const program = await buildProgram(process.argv);
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander.
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`vecsync: ${describeError(error)}\n`);
    if (process.env.VECSYNC_DEBUG) console.error(error);
    process.exitCode = 1;
  }
}

await main();
