/** What `vecsync backfill` and `vecsync reembed` share: running a backfill in the foreground with a progress bar. */
import cliProgress from 'cli-progress';
import type pg from 'pg';
import { startMetricsServer } from '../../adapters/telemetry/metrics.ts';
import { runBackfill, type Progress } from './runner.ts';
import type { Backfill } from './store.ts';

/** The `backfill status --json` shape of one backfill (contract fields first). */
export function backfillJson(b: Backfill) {
  return {
    id: b.id,
    model: b.model,
    tenant: b.tenant,
    state: b.state,
    done: b.done,
    total: b.total,
    rate: b.rate,
    runner: b.runner,
    lease_expired: b.state === 'running' && (b.leaseUntil === null || b.leaseUntil.getTime() < Date.now()),
    error: b.error,
    created_at: b.createdAt.toISOString(),
    finished_at: b.finishedAt?.toISOString() ?? null,
  };
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${s % 60}s`
      : `${s}s`;
}

export interface ForegroundOptions {
  /** Serve /metrics on this port while running (the backfill metrics); undefined: none. */
  metricsPort?: number;
  metricsHost?: string;
}

/**
 * Runs the backfill until done, paused or interrupted (SIGINT/SIGTERM pause it), drawing a bar on
 * a TTY (stderr) and a line every 5 s otherwise. stdout stays for the id and JSON.
 */
export async function runInForeground(pool: pg.Pool, id: number, options: ForegroundOptions = {}): Promise<Backfill> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const server =
    options.metricsPort !== undefined
      ? await startMetricsServer(options.metricsHost ?? '127.0.0.1', options.metricsPort)
      : undefined;
  const tty = process.stderr.isTTY === true;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `backfill ${id} [{bar}] {value}/{total} docs | {rate} docs/s | ETA {eta}`,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let lastLine = 0;
  const onProgress = ({ backfill, rate, etaSeconds }: Progress) => {
    const payload = { rate: rate.toFixed(1), eta: formatEta(etaSeconds) };
    if (bar) {
      if (!bar.isActive) bar.start(backfill.total, backfill.done, payload);
      bar.update(backfill.done, payload);
    } else if (Date.now() - lastLine > 5_000 || backfill.done === backfill.total) {
      lastLine = Date.now();
      process.stderr.write(
        `backfill ${id}: ${backfill.done}/${backfill.total} docs, ${payload.rate} docs/s, ETA ${payload.eta}\n`,
      );
    }
  };
  try {
    const final = await runBackfill(pool, id, { onProgress, signal: controller.signal });
    bar?.stop();
    process.stderr.write(`backfill ${id} ${final.state}: ${final.done}/${final.total} documents\n`);
    return final;
  } finally {
    bar?.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await server?.close();
  }
}
