import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { Command } from 'commander';
import { COMMANDS } from './index.ts';

test('every command file is listed once, and registers the command it is listed as', async () => {
  const files = readdirSync(import.meta.dirname)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'index.ts')
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
  assert.deepEqual([...COMMANDS.map((c) => c.name)].sort(), files);
  for (const entry of COMMANDS) {
    const program = new Command('vecsync');
    (await entry.load()).register(program);
    assert.deepEqual(
      program.commands.map((c) => c.name()),
      [entry.name],
      `${entry.name}.ts registers ${entry.name}`,
    );
  }
});
