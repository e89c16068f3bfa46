import type { Command } from 'commander';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../domain/errors.ts';
import { startDlqMonitor } from '../../dlq/monitor.ts';
import { registerHealthCheck, startMetricsServer } from '../../../adapters/telemetry/metrics.ts';
import { MaintenanceWorker, startMaintenanceLoop } from '../../maintenance/index.ts';
import { registerStatusPage } from '../../ui/server.ts';
import { SERVICE_FACTORIES, SERVICE_NAMES, type RunnableService } from '../../../pipeline/index.ts';
import { createRuntime } from '../../../pipeline/runtime/index.ts';
import type { Service } from '../../../pipeline/runtime/service.ts';

/** Exit within this long after SIGTERM, whatever is in flight (the runner itself gives up at 8 s). */
const SHUTDOWN_DEADLINE_MS = 9_500;

export function register(program: Command): void {
  program
    .command('run')
    .description(`run a consumer: ${SERVICE_NAMES.join(' | ')} | all (every consumer in one process)`)
    .argument('<service>', 'service to run')
    .action(async (which: string) => {
      const names: RunnableService[] =
        which === 'all'
          ? [...SERVICE_NAMES]
          : SERVICE_NAMES.includes(which as RunnableService)
            ? [which as RunnableService]
            : [];
      if (names.length === 0)
        throw new ConfigError(`unknown service '${which}': expected ${SERVICE_NAMES.join(', ')} or all`);
      const config = loadConfig();
      const rt = await createRuntime(config, which);
      // GET /healthz: 200 from the moment every consumer started until shutdown begins.
      let consumersRunning = false;
      registerHealthCheck('consumers', () => consumersRunning);
      registerStatusPage(config, { showProcessHealth: true });
      const server = await startMetricsServer(config.metrics.host, config.metrics.port);
      rt.log.info({ metrics: `http://${config.metrics.host}:${server.port}/metrics`, services: names }, 'starting');
      const services: Service[] = [];
      for (const name of names) services.push(await SERVICE_FACTORIES[name](rt));
      await Promise.all(services.map((s) => s.start()));
      const dlqMonitor = startDlqMonitor(rt.kafka, rt.topics);
      consumersRunning = true;
      // pgvector maintenance runs beside the reconciler, off the write path (own connection, own loop).
      const maintenance =
        names.includes('reconciler') && config.sink.type === 'pgvector' && config.maintenance.intervalMs > 0
          ? startMaintenanceLoop(
              new MaintenanceWorker({
                source: rt.source,
                sinkUrl: config.sink.pgvector.url,
                sinkName: config.sink.name,
                thresholds: {
                  reindexRows: config.maintenance.reindexThreshold,
                  analyzeRows: config.maintenance.analyzeThreshold,
                },
                log: rt.log.child({ service: 'maintenance' }),
              }),
              config.maintenance.intervalMs,
              rt.log,
            )
          : undefined;
      rt.log.info({ services: names }, 'running');
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string) => {
          rt.log.info({ signal }, 'stopping: finishing batches in flight');
          const deadline = setTimeout(() => {
            rt.log.error('shutdown deadline passed; exiting');
            process.exit(1);
          }, SHUTDOWN_DEADLINE_MS);
          deadline.unref();
          consumersRunning = false;
          Promise.allSettled([...services.map((s) => s.stop()), dlqMonitor.stop(), maintenance?.stop()])
            .then(() => rt.close())
            .then(() => server.close())
            .finally(() => resolve());
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
      rt.log.info('stopped');
    });
}
