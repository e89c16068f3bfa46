/**
 * `vecsync` entry point. Each file in ./commands registers one top-level command, so adding a
 * command is adding a file. Every failure ends as one line on stderr and a non-zero exit code.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { describeError } from '../../domain/errors.ts';

export interface CommandModule {
  register(program: Command): void;
}

async function buildProgram(): Promise<Command> {
  const program = new Command('vecsync')
    .description('Keep a vector store in step with PostgreSQL through an outbox, Debezium and Kafka.')
    .showHelpAfterError()
    .exitOverride();
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).sort();
  for (const file of files) {
    const mod = (await import(path.join(dir, file))) as CommandModule;
    mod.register(program);
  }
  return program;
}

async function main(): Promise<void> {
  const program = await buildProgram();
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
