import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { startMetricsServer } from '../../../adapters/telemetry/metrics.ts';
import { registerStatusPage } from '../../ui/server.ts';

/**
 * `vecsync ui [--port P]`: the status page without running consumers (`vecsync run` serves the
 * same page on its metrics port). Prints the URL, serves until SIGINT/SIGTERM.
 */
export function register(program: Command): void {
  program
    .command('ui')
    .description('serve the status page (/, /status, /status.json) on VECSYNC_METRICS_HOST')
    .option('--port <port>', 'port (default VECSYNC_METRICS_PORT; 0 picks a free one)')
    .action(async (opts: { port?: string }) => {
      const config = loadConfig();
      const port = opts.port === undefined ? config.metrics.port : Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid --port ${opts.port}`);
      registerStatusPage(config);
      const server = await startMetricsServer(config.metrics.host, port);
      process.stdout.write(`status page: http://${config.metrics.host}:${server.port}/\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().finally(() => resolve());
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
