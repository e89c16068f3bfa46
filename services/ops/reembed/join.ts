/**
 * Several sinks, one re-embed. Each sink runs `reembed --to` with its own settings (its
 * VECSYNC_SINK_NAME, its backend), and each keeps its own re-embed row, serving row, cutover and
 * retire. The model is one, though: when another sink's open re-embed from the same serving model
 * already registered the model asked for, this sink joins it (the same model version, not a new
 * one) instead of registering the next version. Pure, tested without a database.
 *
 * The backfill is shared only while it has not started: its bulk-lane events then reach every
 * sink whose pipeline for the new model runs before `backfill resume`. Once it has enqueued
 * anything, a pipeline of the joining sink that starts at the end of the lanes would miss those
 * events, so the joining sink gets a backfill of its own (re-enqueued documents are no-ops in the
 * other sinks: the ledger's version guard).
 */
import type { BackfillState } from '../backfill/store.ts';

/** Another sink's re-embed, as the decision needs it. */
export interface OtherReembed {
  sink: string;
  state: 'backfilling' | 'ready' | 'serving' | 'rolled_back' | 'retired';
  /** The model key it re-embeds from. */
  from: string;
  to: { name: string; version: number; embedder: string; dimensions: number; retired: boolean };
  backfill: { id: number; state: BackfillState; done: number; tenants: string[] | null } | null;
}

/** What this sink's `reembed --to` asks for. */
export interface WantedReembed {
  /** The model key this sink serves. */
  from: string;
  name: string;
  embedder: string;
  dimensions: number;
  /** Backfill only these tenants (null: every tenant). */
  tenants: string[] | null;
}

export type JoinPlan =
  | { join: false }
  | {
      join: true;
      /** The sink whose re-embed is joined. */
      sink: string;
      model: { name: string; version: number };
      /** The backfill to share; null: plan a backfill of this sink's own. */
      backfillId: number | null;
    };

const sameTenants = (a: string[] | null, b: string[] | null) =>
  a === null || b === null ? a === b : [...new Set(a)].sort().join('\u0000') === [...new Set(b)].sort().join('\u0000');

/** `others` newest first; the newest matching re-embed is joined. */
export function planJoin(others: OtherReembed[], wanted: WantedReembed): JoinPlan {
  const match = others.find(
    (o) =>
      o.state !== 'retired' &&
      o.from === wanted.from &&
      o.to.name === wanted.name &&
      o.to.embedder === wanted.embedder &&
      o.to.dimensions === wanted.dimensions &&
      !o.to.retired,
  );
  if (!match) return { join: false };
  const b = match.backfill;
  const shared =
    b !== null &&
    (b.state === 'running' || b.state === 'paused') &&
    b.done === 0 &&
    sameTenants(b.tenants, wanted.tenants);
  return {
    join: true,
    sink: match.sink,
    model: { name: match.to.name, version: match.to.version },
    backfillId: shared ? b.id : null,
  };
}
