/**
 * Helpers of the embedding-lifecycle tests: models of one test alone, pipelines of several models
 * under one sink and group prefix, and the `vecsync` CLI as a child process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { uniqueId } from './ids.ts';
import { startPipeline, testSinkName, type PipelineService, type TestPipeline } from './pipeline.ts';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'vecsync.mjs');

export interface TestModel {
  name: string;
  version: number;
  dimensions: number;
  key: string;
}

/** A model name no other test or engineer uses (`hashing` prefix: the hashing embedder). */
export function testModelName(label: string): string {
  return `hashing-${uniqueId(label).replace(/_/g, '-')}`;
}

export async function registerTestModel(
  pool: pg.Pool,
  name: string,
  version: number,
  dimensions: number,
  state = 'active',
): Promise<TestModel> {
  await pool.query(
    `INSERT INTO vecsync.embedding_models (name, version, dimensions, chunker, chunker_version, chunk_size, chunk_overlap, state, embedder)
     VALUES ($1, $2, $3, 'recursive-char', 1, 800, 100, $4, 'hashing')`,
    [name, version, dimensions, state],
  );
  return { name, version, dimensions, key: `${name}.v${version}` };
}

/** Removes the test's serving rows, re-embeds and backfills, and retires its models. */
export async function dropTestModels(pool: pg.Pool, names: string[], sinks: string[]): Promise<void> {
  await pool.query('DELETE FROM vecsync.model_serving WHERE sink_name = ANY($1) OR model_name = ANY($2)', [
    sinks,
    names,
  ]);
  await pool.query('DELETE FROM vecsync.reembeds WHERE sink_name = ANY($1)', [sinks]);
  await pool.query('DELETE FROM vecsync.backfills WHERE model_name = ANY($1)', [names]);
  // Retired, not deleted: events already enqueued for them are skipped by every embedder instead
  // of being dead-lettered as an unknown model.
  await pool.query(`UPDATE vecsync.embedding_models SET state = 'retired' WHERE name = ANY($1)`, [names]);
}

export interface Shared {
  sinkName: string;
  groupPrefix: string;
}

export function sharedNames(label: string): Shared {
  const sinkName = testSinkName();
  return { sinkName, groupPrefix: `test.${label}.${sinkName}` };
}

/** The environment of one model's deployment on the shared sink and group prefix. */
export function modelEnv(shared: Shared, model: TestModel): Record<string, string> {
  return {
    VECSYNC_SINK_NAME: shared.sinkName,
    VECSYNC_GROUP_PREFIX: shared.groupPrefix,
    VECSYNC_EMBEDDER: 'hashing',
    VECSYNC_EMBEDDING_MODEL: model.name,
    VECSYNC_EMBEDDING_VERSION: String(model.version),
    VECSYNC_EMBEDDING_DIMENSIONS: String(model.dimensions),
  };
}

export function startModelPipeline(
  label: string,
  shared: Shared,
  model: TestModel,
  services: PipelineService[],
): Promise<TestPipeline> {
  return startPipeline(label, { services, env: modelEnv(shared, model) });
}

/** Documents of `tenant` the sink's ledger holds at their current source version for `modelKey`. */
export async function syncedCount(pool: pg.Pool, sinkName: string, tenant: string, modelKey: string): Promise<number> {
  const res = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM vecsync.documents d
       JOIN vecsync.sync_state s ON s.sink_name = $1 AND s.tenant_id = d.tenant_id AND s.document_id = d.document_id
                                AND s.model_key = $3 AND s.version >= d.version AND NOT s.tombstone
      WHERE d.tenant_id = $2 AND d.status = 'active'`,
    [sinkName, tenant, modelKey],
  );
  return Number(res.rows[0]!.n);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `vecsync args` to completion. */
export function vecsync(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, VECSYNC_LOG_LEVEL: 'warn', ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts `vecsync args` and returns the child and its first stdout line (a backfill id). */
export async function vecsyncBackground(
  args: string[],
  env: Record<string, string>,
  options: { waitForLine?: boolean } = {},
): Promise<{ child: ChildProcess; firstLine: string; exited: Promise<number | null>; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, VECSYNC_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (options.waitForLine === false) return { child, firstLine: '', exited, stderr: () => stderr };
  const firstLine = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on('exit', (code) => reject(new Error(`vecsync ${args.join(' ')} exited with ${code}: ${stderr}`)));
  });
  return { child, firstLine, exited, stderr: () => stderr };
}
