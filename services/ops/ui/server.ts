/**
 * Serves the status page on the metrics server: `/` and `/status` (HTML), `/status.json` (the
 * same JSON as `vecsync status --json`). Both come from one `collectStatus` call per request:
 * the page computes nothing of its own.
 */
import type { Config } from '../../config/index.ts';
import { healthState, registerRoute } from '../../adapters/telemetry/metrics.ts';
import { collectStatus, type PipelineStatus } from '../status/index.ts';
import { renderStatusPage } from './render.ts';

export interface StatusPageOptions {
  /** Show this process's /healthz state on the page (processes that run consumers). */
  showProcessHealth?: boolean;
  /** Test seam: where the status comes from. */
  collect?: () => Promise<PipelineStatus>;
}

export function registerStatusPage(config: Config, options: StatusPageOptions = {}): () => void {
  const collect = options.collect ?? (() => collectStatus(config));
  // Concurrent requests share one collection (a page reload storm must not fan out to Kafka).
  let inFlight: Promise<PipelineStatus> | undefined;
  const status = () => {
    inFlight ??= collect().finally(() => (inFlight = undefined));
    return inFlight;
  };
  const page = async (req: { url?: string }, res: import('node:http').ServerResponse) => {
    const refresh = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('refresh') ?? 10);
    const s = await status();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(
      renderStatusPage(s, {
        refreshSeconds: Number.isFinite(refresh) && refresh >= 0 ? refresh : 10,
        health: options.showProcessHealth ? healthState() : null,
      }),
    );
  };
  const json = async (_req: unknown, res: import('node:http').ServerResponse) => {
    const s = await status();
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(s, null, 2) + '\n');
  };
  const off = [registerRoute('/', page), registerRoute('/status', page), registerRoute('/status.json', json)];
  return () => off.forEach((f) => f());
}
