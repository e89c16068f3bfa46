/**
 * Blue/green re-embedding, per sink (`vecsync.reembeds`, `vecsync.model_serving`):
 *
 *   reembed --to E   registers the next model version of embedder E (state backfilling), creates
 *                    its index, and backfills it on the bulk lane (a second sink joins another
 *                    sink's open re-embed to that model: join.ts). Being non-retired, the model gets
 *                    one live outbox row per content change from the triggers, and the propagator
 *                    applies deletes and ACL changes to every non-retired index, so the new index
 *                    follows live changes while the serving model keeps serving.
 *   status           {from, to, state, done, total}
 *   compare          the dry-run compare: document sets, versions and ACLs old against new, top-k
 *                    overlap on sampled queries, recall of the golden set for both models.
 *   cutover          one UPDATE of the sink's serving row: every search switches at once.
 *   rollback         the same UPDATE back; both indexes are kept (and kept in step).
 *   retire           after a grace period: the old model is retired, its index dropped.
 */
import type pg from 'pg';
import type { Config } from '../../config/index.ts';
import { ConfigError } from '../../domain/errors.ts';
import { modelKey } from '../../domain/types.ts';
import { createEmbedder, type Embedder } from '../../adapters/embedding/index.ts';
import {
  getModel,
  registerModel,
  servingModel,
  setModelState,
  setServing,
  type EmbeddingModel,
} from '../../adapters/postgres/models.ts';
import type { IndexSpec, Sink, StoredDocument } from '../../adapters/sinks/types.ts';
import { createBackfill, getBackfill } from '../backfill/store.ts';
import { planJoin, type OtherReembed } from './join.ts';
import { scoreRecall, type RecallScore } from './recall.ts';
import { withTransaction } from '../../adapters/postgres/pool.ts';

export const ReembedState = {
  backfilling: 'backfilling',
  ready: 'ready',
  serving: 'serving',
  rolledBack: 'rolled_back',
  retired: 'retired',
} as const;
export type ReembedState = (typeof ReembedState)[keyof typeof ReembedState];

export interface Reembed {
  id: number;
  sink: string;
  from: { name: string; version: number; key: string };
  to: { name: string; version: number; key: string };
  state: ReembedState;
  backfillId: number | null;
  createdAt: Date;
  cutoverAt: Date | null;
}

interface ReembedRow {
  id: string;
  sink_name: string;
  from_name: string;
  from_version: number;
  to_name: string;
  to_version: number;
  state: ReembedState;
  backfill_id: string | null;
  created_at: Date;
  cutover_at: Date | null;
}

function fromRow(r: ReembedRow): Reembed {
  return {
    id: Number(r.id),
    sink: r.sink_name,
    from: { name: r.from_name, version: r.from_version, key: modelKey(r.from_name, r.from_version) },
    to: { name: r.to_name, version: r.to_version, key: modelKey(r.to_name, r.to_version) },
    state: r.state,
    backfillId: r.backfill_id === null ? null : Number(r.backfill_id),
    createdAt: r.created_at,
    cutoverAt: r.cutover_at,
  };
}

type Db = Pick<pg.Pool, 'query'>;

/** The sink's latest re-embed, or undefined. */
export async function latestReembed(db: Db, sinkName: string): Promise<Reembed | undefined> {
  const res = await db.query<ReembedRow>(
    'SELECT * FROM vecsync.reembeds WHERE sink_name = $1 ORDER BY id DESC LIMIT 1',
    [sinkName],
  );
  return res.rows[0] ? fromRow(res.rows[0]) : undefined;
}

async function requireReembed(db: Db, sinkName: string): Promise<Reembed> {
  const r = await latestReembed(db, sinkName);
  if (!r) throw new ConfigError(`no re-embed for sink ${sinkName}; start one with vecsync reembed --to <embedder>`);
  return r;
}

export async function setReembedState(db: Db, id: number, state: ReembedState, stamp?: string) {
  await db.query(`UPDATE vecsync.reembeds SET state = $2${stamp ? `, ${stamp} = now()` : ''} WHERE id = $1`, [
    id,
    state,
  ]);
}

export function indexOf(m: EmbeddingModel): IndexSpec {
  return { modelKey: m.modelKey, dimensions: m.dimensions };
}

/** The embedder that produced `model`, for queries against its index. */
export function embedderFor(config: Config, model: EmbeddingModel): Embedder {
  return createEmbedder({
    ...config.embedder,
    type: model.embedder,
    dimensions: model.dimensions,
    retry: config.retry,
  });
}

async function serving(db: Db, config: Config): Promise<EmbeddingModel> {
  const m = await servingModel(db, config.sink.name, { name: config.embedder.model, version: config.embedder.version });
  if (!m) {
    throw new ConfigError(
      `sink ${config.sink.name} serves no registered model (run vecsync migrate to register ${config.embedder.model}.v${config.embedder.version})`,
    );
  }
  return m;
}

export interface StartOptions {
  /** Embedder provider of the new model (`hashing`, `openai`, `minilm`). */
  to: string;
  /** Model name; default: the serving model's name when the provider is the same, else `<to>-<dimensions>`. */
  name?: string;
  dimensions?: number;
  rate: number;
  /** Backfill only these tenants (a staged re-embed, the demo's, or a test on a shared database). */
  tenants?: string[];
}

/** Other sinks' re-embeds to a model named `name`, newest first, for `planJoin`. */
async function otherReembeds(db: Db, sinkName: string, name: string): Promise<OtherReembed[]> {
  const res = await db.query<ReembedRow>(
    'SELECT * FROM vecsync.reembeds WHERE sink_name <> $1 AND to_name = $2 ORDER BY id DESC',
    [sinkName, name],
  );
  const out: OtherReembed[] = [];
  for (const r of res.rows.map(fromRow)) {
    const to = await getModel(db, r.to.name, r.to.version);
    if (!to) continue;
    const b = r.backfillId === null ? undefined : await getBackfill(db, r.backfillId);
    out.push({
      sink: r.sink,
      state: r.state,
      from: r.from.key,
      to: { ...r.to, embedder: to.embedder, dimensions: to.dimensions, retired: to.state === 'retired' },
      backfill: b ? { id: b.id, state: b.state, done: b.done, tenants: b.tenant?.split(',') ?? null } : null,
    });
  }
  return out;
}

/**
 * Registers the next model version, creates its index, records the re-embed and plans its
 * backfill (run it with `runInForeground`). Refuses while another re-embed of the sink is open.
 * When another sink's open re-embed from the same model already registered this model, the sink
 * joins it: the same model version, and its backfill while that has not started (join.ts).
 */
export async function startReembed(
  pool: pg.Pool,
  config: Config,
  sink: Sink,
  options: StartOptions,
): Promise<{ reembed: Reembed; model: EmbeddingModel }> {
  const open = await latestReembed(pool, config.sink.name);
  if (open && (open.state === 'backfilling' || open.state === 'ready')) {
    throw new ConfigError(
      `re-embed ${open.id} (${open.from.key} → ${open.to.key}) is ${open.state}; cut it over and retire, or retire it first`,
    );
  }
  const from = await serving(pool, config);
  const sameProvider = options.to === from.embedder;
  const dimensions = options.dimensions ?? (sameProvider ? from.dimensions : config.embedder.dimensions);
  const name =
    options.name ?? (sameProvider && dimensions === from.dimensions ? from.name : `${options.to}-${dimensions}`);
  const join = planJoin(await otherReembeds(pool, config.sink.name, name), {
    from: from.modelKey,
    name,
    embedder: options.to,
    dimensions,
    tenants: options.tenants ?? null,
  });
  let model: EmbeddingModel;
  if (join.join) {
    model = (await getModel(pool, join.model.name, join.model.version))!;
  } else {
    const next = await pool.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM vecsync.embedding_models WHERE name = $1',
      [name],
    );
    const version = (next.rows[0]?.v ?? 0) + 1;
    // Check that the provider exists before anything is registered.
    embedderFor(config, {
      ...from,
      name,
      version,
      dimensions,
      embedder: options.to,
      modelKey: modelKey(name, version),
    });
    model = await registerModel(pool, {
      name,
      version,
      dimensions,
      chunker: from.chunker,
      chunkerVersion: from.chunkerVersion,
      chunkSize: from.chunkSize,
      chunkOverlap: from.chunkOverlap,
      embedder: options.to,
      state: 'backfilling',
    });
  }
  await sink.ensureIndex(indexOf(model));
  // The sink's serving model becomes explicit, so a later cutover is one UPDATE of one row.
  await pool.query(
    `INSERT INTO vecsync.model_serving (sink_name, model_name, model_version) VALUES ($1, $2, $3)
     ON CONFLICT (sink_name) DO NOTHING`,
    [config.sink.name, from.name, from.version],
  );
  const backfillId =
    join.join && join.backfillId !== null
      ? join.backfillId
      : (
          await createBackfill(pool, {
            model: { name: model.name, version: model.version },
            tenants: options.tenants ?? null,
            rate: options.rate,
          })
        ).id;
  const res = await pool.query<ReembedRow>(
    `INSERT INTO vecsync.reembeds (sink_name, from_name, from_version, to_name, to_version, backfill_id)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [config.sink.name, from.name, from.version, model.name, model.version, backfillId],
  );
  return { reembed: fromRow(res.rows[0]!), model };
}

export interface ReembedStatus {
  id: number;
  sink: string;
  from: string;
  to: string;
  state: ReembedState;
  done: number;
  total: number;
  backfill: { id: number; state: string } | null;
  serving: string;
}

/** The latest re-embed's status; a finished backfill moves it (and its model) to ready. */
export async function reembedStatus(pool: pg.Pool, config: Config): Promise<ReembedStatus> {
  const r = await requireReembed(pool, config.sink.name);
  const backfill = r.backfillId === null ? undefined : await getBackfill(pool, r.backfillId);
  let state = r.state;
  if (state === 'backfilling' && backfill?.state === 'done') {
    await setReembedState(pool, r.id, 'ready');
    await pool.query(
      `UPDATE vecsync.embedding_models SET state = 'ready' WHERE name = $1 AND version = $2 AND state = 'backfilling'`,
      [r.to.name, r.to.version],
    );
    state = 'ready';
  }
  const current = await serving(pool, config);
  return {
    id: r.id,
    sink: r.sink,
    from: r.from.key,
    to: r.to.key,
    state,
    done: backfill?.done ?? 0,
    total: backfill?.total ?? 0,
    backfill: backfill ? { id: backfill.id, state: backfill.state } : null,
    serving: current.modelKey,
  };
}

// ---- compare ------------------------------------------------------------------------------------

export interface Compare {
  from: string;
  to: string;
  documents: { old: number; new: number; missing_in_new: number; extra_in_new: number };
  acl_mismatch: number;
  version_mismatch: number;
  /** Mean share of the old model's top-k documents that the new model also returns, over sampled queries. */
  topk_overlap: number | null;
  topk: { k: number; queries: number };
  recall: {
    k: number;
    queries: number;
    old: number | null;
    new: number | null;
    tenants: Record<string, { old: number | null; new: number | null }>;
  };
  /** No document missing or extra, no version or ACL mismatch: ready for cutover. */
  clean: boolean;
  samples: { missing_in_new: string[]; extra_in_new: string[]; version_mismatch: string[]; acl_mismatch: string[] };
}

async function storedDocuments(sink: Sink, index: IndexSpec, tenants: string[]): Promise<Map<string, StoredDocument>> {
  const out = new Map<string, StoredDocument>();
  for (const tenant of tenants) {
    for await (const doc of sink.listDocuments(index, tenant)) out.set(`${tenant}:${doc.documentId}`, doc);
  }
  return out;
}

const sameAcl = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

export interface CompareOptions {
  tenant?: string;
  /** Several tenants (the demo's); `tenant` wins when both are given. */
  tenants?: string[];
  /** Sampled queries for the top-k overlap. */
  queries?: number;
  k?: number;
}

/** Compares two models' indexes in one sink; `old`/`new` default to the latest re-embed's. */
export async function compareModels(
  pool: pg.Pool,
  config: Config,
  sink: Sink,
  oldModel: EmbeddingModel,
  newModel: EmbeddingModel,
  options: CompareOptions = {},
): Promise<Compare> {
  const k = options.k ?? 10;
  const [oldIndex, newIndex] = [indexOf(oldModel), indexOf(newModel)];
  const only = options.tenant ? [options.tenant] : options.tenants;
  const tenants = only
    ? only
    : [...new Set([...(await sink.listTenants(oldIndex)), ...(await sink.listTenants(newIndex))])].sort();
  const [olds, news] = [await storedDocuments(sink, oldIndex, tenants), await storedDocuments(sink, newIndex, tenants)];
  const samples: Compare['samples'] = { missing_in_new: [], extra_in_new: [], version_mismatch: [], acl_mismatch: [] };
  const note = (list: string[], key: string) => list.length < 10 && list.push(key);
  let missing = 0;
  let extra = 0;
  let versionMismatch = 0;
  let aclMismatch = 0;
  for (const [key, o] of olds) {
    const n = news.get(key);
    if (!n) {
      missing++;
      note(samples.missing_in_new, key);
      continue;
    }
    if (n.documentVersion !== o.documentVersion || n.chunkIndexes.length === 0) {
      versionMismatch++;
      note(samples.version_mismatch, key);
    }
    if (n.aclVersion !== o.aclVersion || !sameAcl(n.acl, o.acl)) {
      aclMismatch++;
      note(samples.acl_mismatch, key);
    }
  }
  for (const key of news.keys()) {
    if (!olds.has(key)) {
      extra++;
      note(samples.extra_in_new, key);
    }
  }

  // Top-k overlap: sampled documents' titles as queries, searched by a principal who may see them.
  const oldEmbedder = embedderFor(config, oldModel);
  const newEmbedder = embedderFor(config, newModel);
  const sampled = [...olds.entries()].filter(([, d]) => d.acl.length > 0);
  const wanted = Math.min(options.queries ?? 20, sampled.length);
  const step = sampled.length / Math.max(1, wanted);
  let overlapSum = 0;
  let asked = 0;
  for (let i = 0; i < wanted; i++) {
    const [key, doc] = sampled[Math.floor(i * step)]!;
    const tenant = key.slice(0, key.indexOf(':'));
    const src = await pool.query<{ title: string | null; body: string | null }>(
      'SELECT title, body FROM vecsync.documents WHERE tenant_id = $1 AND document_id = $2',
      [tenant, doc.documentId],
    );
    const row = src.rows[0];
    if (!row) continue;
    const text = `${row.title ?? ''} ${(row.body ?? '').slice(0, 200)}`.trim();
    const principal = doc.acl[0]!;
    const [ov] = await oldEmbedder.embed([text]);
    const [nv] = await newEmbedder.embed([text]);
    const a = await sink.search({ modelKey: oldModel.modelKey, tenantId: tenant, principal, vector: ov!, topK: k });
    const b = await sink.search({ modelKey: newModel.modelKey, tenantId: tenant, principal, vector: nv!, topK: k });
    const oldDocs = new Set(a.map((h) => h.documentId));
    const newDocs = new Set(b.map((h) => h.documentId));
    if (oldDocs.size === 0) continue;
    overlapSum += [...oldDocs].filter((d) => newDocs.has(d)).length / oldDocs.size;
    asked++;
  }

  const recallOld = await scoreRecall(pool, sink, oldModel, oldEmbedder, {
    k,
    tenants: options.tenant ? [options.tenant] : undefined,
  });
  const recallNew = await scoreRecall(pool, sink, newModel, newEmbedder, {
    k,
    tenants: options.tenant ? [options.tenant] : undefined,
  });
  const recallTenants: Compare['recall']['tenants'] = {};
  for (const s of recallOld.tenants) recallTenants[s.tenant] = { old: s.recall, new: null };
  for (const s of recallNew.tenants)
    recallTenants[s.tenant] = { old: recallTenants[s.tenant]?.old ?? null, new: s.recall };

  return {
    from: oldModel.modelKey,
    to: newModel.modelKey,
    documents: { old: olds.size, new: news.size, missing_in_new: missing, extra_in_new: extra },
    acl_mismatch: aclMismatch,
    version_mismatch: versionMismatch,
    topk_overlap: asked > 0 ? overlapSum / asked : null,
    topk: { k, queries: asked },
    recall: { k, queries: recallOld.queries, old: overall(recallOld), new: overall(recallNew), tenants: recallTenants },
    clean: missing === 0 && extra === 0 && versionMismatch === 0 && aclMismatch === 0,
    samples,
  };
}

function overall(score: RecallScore): number | null {
  return score.queries > 0 ? score.hits / score.queries : null;
}

/** The latest re-embed's two models. */
export async function reembedModels(
  pool: pg.Pool,
  config: Config,
): Promise<{ r: Reembed; from: EmbeddingModel; to: EmbeddingModel }> {
  const r = await requireReembed(pool, config.sink.name);
  const from = await getModel(pool, r.from.name, r.from.version);
  const to = await getModel(pool, r.to.name, r.to.version);
  if (!from || !to) throw new ConfigError(`re-embed ${r.id}: model ${!from ? r.from.key : r.to.key} is not registered`);
  return { r, from, to };
}

// ---- cutover, rollback, retire ------------------------------------------------------------------

/**
 * Cutover: search switches to the new model in one UPDATE of the sink's serving row. Without
 * `force`, the compare must be clean.
 */
export async function cutover(
  pool: pg.Pool,
  config: Config,
  sink: Sink,
  /** `tenants`: check readiness for these tenants only (the re-embed backfilled only them). */
  options: { force?: boolean; tenants?: string[] } = {},
): Promise<{ reembed: Reembed; compare?: Compare }> {
  const status = await reembedStatus(pool, config);
  const { r, from, to } = await reembedModels(pool, config);
  if (r.state === 'serving') throw new ConfigError(`re-embed ${r.id}: ${to.modelKey} is already serving`);
  if (r.state === 'retired') throw new ConfigError(`re-embed ${r.id} is retired`);
  if (status.state === 'backfilling' && !options.force) {
    throw new ConfigError(`re-embed ${r.id}: backfill at ${status.done}/${status.total}; wait for it, or --force`);
  }
  let compare: Compare | undefined;
  if (!options.force) {
    compare = await compareModels(pool, config, sink, from, to, {
      queries: 0,
      ...(options.tenants ? { tenants: options.tenants } : {}),
    });
    if (!compare.clean) {
      throw new ConfigError(
        `re-embed ${r.id}: compare not clean (missing_in_new ${compare.documents.missing_in_new}, extra_in_new ${compare.documents.extra_in_new}, version_mismatch ${compare.version_mismatch}, acl_mismatch ${compare.acl_mismatch}); wait for lag to reach zero, or --force`,
      );
    }
  }
  await withTransaction(pool, async (client) => {
    await setServing(client, config.sink.name, to);
    await setModelState(client, to, 'active');
    await client.query(`UPDATE vecsync.reembeds SET state = 'serving', cutover_at = now() WHERE id = $1`, [r.id]);
  });
  return { reembed: (await latestReembed(pool, config.sink.name))!, ...(compare ? { compare } : {}) };
}

/**
 * Rollback: search switches back to the old model; both indexes are kept and kept in step. The
 * new model goes back to ready unless another sink still serves it.
 */
export async function rollback(pool: pg.Pool, config: Config): Promise<Reembed> {
  const { r, from, to } = await reembedModels(pool, config);
  if (r.state !== 'serving')
    throw new ConfigError(`re-embed ${r.id} is ${r.state}; only a serving re-embed can be rolled back`);
  if (from.state === 'retired') {
    throw new ConfigError(
      `re-embed ${r.id}: ${from.modelKey} is retired (by another sink); its index is not kept in step`,
    );
  }
  await withTransaction(pool, async (client) => {
    await setServing(client, config.sink.name, from);
    await client.query(
      `UPDATE vecsync.embedding_models SET state = 'ready'
        WHERE name = $1 AND version = $2
          AND NOT EXISTS (SELECT 1 FROM vecsync.model_serving WHERE model_name = $1 AND model_version = $2)`,
      [to.name, to.version],
    );
    await client.query(`UPDATE vecsync.reembeds SET state = 'rolled_back', rolled_back_at = now() WHERE id = $1`, [
      r.id,
    ]);
  });
  return (await latestReembed(pool, config.sink.name))!;
}

/**
 * Takes a model out of this sink: retired (the triggers stop emitting for it), its index dropped
 * and its ledger rows removed.
 */
export async function dropModel(pool: pg.Pool, config: Config, sink: Sink, model: EmbeddingModel): Promise<void> {
  await setModelState(pool, model, 'retired');
  await sink.dropIndex(indexOf(model));
  await pool.query('DELETE FROM vecsync.sync_state WHERE sink_name = $1 AND model_key = $2', [
    config.sink.name,
    model.modelKey,
  ]);
}

/**
 * Retire: once the new model has served for `graceSeconds`, the old model is retired (the triggers
 * stop emitting for it), its index in this sink is dropped and its ledger rows removed. Refused
 * while another sink still serves the old model.
 */
export async function retire(pool: pg.Pool, config: Config, sink: Sink, graceSeconds: number): Promise<Reembed> {
  const { r, from } = await reembedModels(pool, config);
  if (r.state !== 'serving') throw new ConfigError(`re-embed ${r.id} is ${r.state}; retire follows a cutover`);
  const servedFor = r.cutoverAt ? (Date.now() - r.cutoverAt.getTime()) / 1000 : 0;
  if (servedFor < graceSeconds) {
    throw new ConfigError(
      `re-embed ${r.id}: ${r.to.key} has served for ${Math.floor(servedFor)} s; the grace period is ${graceSeconds} s (--grace)`,
    );
  }
  const others = await pool.query<{ sink_name: string }>(
    'SELECT sink_name FROM vecsync.model_serving WHERE model_name = $1 AND model_version = $2 AND sink_name <> $3',
    [from.name, from.version, config.sink.name],
  );
  if (others.rows.length > 0) {
    throw new ConfigError(`${from.modelKey} still serves sink(s) ${others.rows.map((x) => x.sink_name).join(', ')}`);
  }
  await dropModel(pool, config, sink, from);
  await setReembedState(pool, r.id, 'retired', 'retired_at');
  return (await latestReembed(pool, config.sink.name))!;
}
