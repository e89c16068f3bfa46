/**
 * The CLI's commands, one file each; adding a command is adding a file and a line here. A command's
 * module (and what it imports: Kafka, PostgreSQL, the sinks) is loaded only when that command runs,
 * so `vecsync --help` and a quick `vecsync status` do not pay for the whole pipeline.
 */
import type { Command } from 'commander';

export interface CommandModule {
  register(program: Command): void;
}

export interface CommandEntry {
  name: string;
  /** The line `vecsync --help` shows; the module's own description is shown by `vecsync NAME --help`. */
  summary: string;
  load(): Promise<CommandModule>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'stack', summary: 'the local stack: up | down | status', load: () => import('./stack.ts') },
  {
    name: 'migrate',
    summary: 'create the databases and run the source and sink migrations',
    load: () => import('./migrate.ts'),
  },
  {
    name: 'connectors',
    summary: 'the Debezium outbox connector and the topics it feeds',
    load: () => import('./connectors.ts'),
  },
  {
    name: 'run',
    summary: 'run a consumer: embedder | writer | propagator | reconciler | all',
    load: () => import('./run.ts'),
  },
  {
    name: 'status',
    summary: 'pipeline health, lag, event age per lane, DLQ sizes, slot, outbox backlog',
    load: () => import('./status.ts'),
  },
  { name: 'inspect', summary: 'inspect what the sink holds', load: () => import('./inspect.ts') },
  { name: 'search', summary: 'permission-filtered semantic search', load: () => import('./search.ts') },
  {
    name: 'dlq',
    summary: 'dead-letter topics: what failed and why, and putting it back',
    load: () => import('./dlq.ts'),
  },
  {
    name: 'replay',
    summary: 'reset a stopped consumer group to the earliest offset or a point in time',
    load: () => import('./replay.ts'),
  },
  {
    name: 'reconcile',
    summary: 'compare the sink and the state topic with the source; optionally repair',
    load: () => import('./reconcile.ts'),
  },
  {
    name: 'models',
    summary: 'embedding models: list, golden queries, recall',
    load: () => import('./models.ts'),
  },
  {
    name: 'backfill',
    summary: 'operator-controlled backfills on the bulk lane: start | pause | resume | status',
    load: () => import('./backfill.ts'),
  },
  {
    name: 'reembed',
    summary: 'blue/green re-embed: --to E | status | compare | cutover | rollback | retire',
    load: () => import('./reembed.ts'),
  },
  { name: 'ui', summary: 'serve the status page', load: () => import('./ui.ts') },
  {
    name: 'config',
    summary: 'validate the environment and print the effective configuration',
    load: () => import('./config.ts'),
  },
  {
    name: 'demo',
    summary: 'bring the stack up, sync a demo corpus, search it, measure freshness',
    load: () => import('./demo.ts'),
  },
];
