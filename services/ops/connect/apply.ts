/**
 * `vecsync connectors apply|status`: provision topics, drop the connector's replication slot if
 * PostgreSQL invalidated it, bring an existing connector that is not running back (resume a paused
 * or stopped one, restart a failed one), put the connector config only when it differs from the
 * live one (so a repeated apply never restarts a running connector), and wait until the connector
 * and every task run.
 */
import type { Config } from '../../config/index.ts';
import { describeError, RetriableError, VecsyncError } from '../../domain/errors.ts';
import { sleep } from '../../domain/retry.ts';
import { ConnectClient, type ConnectorStatus } from './connect-client.ts';
import { dropLostSlot } from './slot.ts';
import {
  configDifferences,
  redactConnectorConfig,
  renderConnectorFromConfig,
  slotName,
  type RenderedConnector,
} from './render.ts';
import {
  chunkTopicSpec,
  pipelineTopics,
  provisionTopics,
  type TopicProvisionReport,
} from '../../adapters/kafka/admin.ts';
import { topicsFor } from '../../adapters/kafka/topics.ts';
import { modelKey } from '../../domain/types.ts';
import { createKafka } from '../../adapters/kafka/client.ts';
import { createLogger } from '../../adapters/telemetry/log.ts';

/** The connector or one of its tasks failed; `trace` is the first line of Connect's trace. */
export class ConnectorFailedError extends VecsyncError {
  readonly retriable = false;
}

export interface ApplyOptions {
  partitions?: number;
  /** How long to wait for RUNNING. */
  timeoutMs?: number;
  pollMs?: number;
  log?: (line: string) => void;
}

export interface ApplyReport {
  connector: string;
  topics: TopicProvisionReport;
  /** false: the live config already matched; nothing was sent to Connect. */
  changed: boolean;
  created: boolean;
  changedKeys: string[];
  /** The connector's replication slot had been invalidated (`wal_status=lost`) and was dropped. */
  slot_dropped: boolean;
  /** What brought the existing connector back: resumed (it was PAUSED or STOPPED), restarted (it or a task FAILED). */
  recovered: Recovery;
  status: ConnectorSummary;
}

export type Recovery = 'resumed' | 'restarted' | null;

export interface ConnectorSummary {
  name: string;
  state: string;
  worker_id: string;
  tasks: Array<{ id: number; state: string; worker_id: string; trace?: string }>;
}

export function summarizeStatus(status: ConnectorStatus): ConnectorSummary {
  return {
    name: status.name,
    state: status.connector.state,
    worker_id: status.connector.worker_id,
    tasks: status.tasks.map((t) => ({
      id: t.id,
      state: t.state,
      worker_id: t.worker_id,
      ...(t.trace ? { trace: firstLine(t.trace) } : {}),
    })),
  };
}

function firstLine(s: string): string {
  return s.split('\n')[0]?.trim() ?? s;
}

/** The failure of a status, as one line, or null when nothing failed. */
export function failureOf(status: ConnectorStatus): string | null {
  if (status.connector.state === 'FAILED') {
    return `connector ${status.name} FAILED: ${firstLine(status.connector.trace ?? 'no trace')}`;
  }
  const failed = status.tasks.find((t) => t.state === 'FAILED');
  if (failed) return `connector ${status.name} task ${failed.id} FAILED: ${firstLine(failed.trace ?? 'no trace')}`;
  return null;
}

export function isRunning(status: ConnectorStatus): boolean {
  return (
    status.connector.state === 'RUNNING' && status.tasks.length > 0 && status.tasks.every((t) => t.state === 'RUNNING')
  );
}

export async function applyConnectors(config: Config, options: ApplyOptions = {}): Promise<ApplyReport> {
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const pollMs = options.pollMs ?? 500;

  // Client logs go to stderr through the logger, so stdout stays clean for --json.
  const kafka = createKafka(config.kafkaBrokers, 'vecsync-admin', createLogger('warn', 'connectors'));
  let topics: TopicProvisionReport;
  try {
    const chunks = topicsFor(config.topicPrefix).chunks(modelKey(config.embedder.model, config.embedder.version));
    topics = await provisionTopics(kafka, [
      ...pipelineTopics(config.topicPrefix, options.partitions),
      chunkTopicSpec(chunks, options.partitions),
    ]);
  } catch (error) {
    throw new RetriableError(`cannot provision topics on ${config.kafkaBrokers.join(',')}: ${describeError(error)}`, {
      cause: error,
    });
  }
  log(
    `topics: ${topics.created.length} created${topics.created.length ? ` (${topics.created.join(', ')})` : ''}, ` +
      `${topics.existing.length} already present${topics.reconfigured.length ? `, reconfigured ${topics.reconfigured.join(', ')}` : ''}`,
  );
  for (const w of topics.warnings) log(`warning: ${w}`);

  // Before the connector: a task started on a lost slot never streams, and Debezium does not
  // replace the slot itself.
  const slot = slotName(config.topicPrefix);
  let slotDropped = false;
  try {
    slotDropped = await dropLostSlot(config.sourceUrl, slot);
  } catch (error) {
    log(`warning: cannot check replication slot ${slot} on the source: ${describeError(error)}`);
  }
  if (slotDropped) {
    log(
      `replication slot ${slot}: was lost (wal_status=lost), dropped; Debezium creates a new one and ` +
        're-snapshots the queued outbox rows. Then run `vecsync reconcile --repair` for every sink.',
    );
  }

  const desired = await renderConnectorFromConfig(config);
  const client = new ConnectClient(config.connectUrl);
  const live = await client.getConfig(desired.name);
  const changedKeys = live === null ? [] : configDifferences(live, desired.config);
  const changed = live === null || changedKeys.length > 0;
  const recovered = live === null ? null : await bringBack(client, desired.name, { changed, log });
  if (changed) {
    await client.putConfig(desired.name, desired.config);
    log(
      live === null
        ? `connector ${desired.name}: created`
        : `connector ${desired.name}: updated (${changedKeys.join(', ')})`,
    );
  } else {
    log(`connector ${desired.name}: config unchanged`);
  }
  const status = await waitUntilRunning(client, desired, {
    timeoutMs,
    pollMs,
    changed: changed || recovered !== null,
    // Right after a restart request Connect may still report the old FAILED state.
    ...(recovered === 'restarted' ? { failureGraceMs: RESTART_GRACE_MS } : {}),
  });
  log(`connector ${desired.name}: ${status.state}, ${status.tasks.map((t) => `task ${t.id} ${t.state}`).join(', ')}`);
  return {
    connector: desired.name,
    topics,
    changed,
    created: live === null,
    changedKeys,
    slot_dropped: slotDropped,
    recovered,
    status,
  };
}

/** How long a FAILED state may still be reported after a restart request. */
export const RESTART_GRACE_MS = 10_000;

/**
 * Brings an existing connector that is not running back: `apply` means "run as configured", and a
 * config PUT alone does neither of these (a stopped or paused connector stays so; a failed task
 * whose config did not change stays failed). A PAUSED or STOPPED connector is resumed; a FAILED
 * connector or task is restarted (failed instances only), unless the config changed, which restarts
 * the tasks anyway.
 */
export async function bringBack(
  client: ConnectClient,
  name: string,
  options: { changed: boolean; log?: (line: string) => void },
): Promise<Recovery> {
  const log = options.log ?? (() => undefined);
  const status = await client.getStatus(name);
  if (!status) return null;
  const state = status.connector.state;
  if (state === 'PAUSED' || state === 'STOPPED') {
    await client.resume(name);
    log(`connector ${name}: resumed (it was ${state})`);
    return 'resumed';
  }
  const failure = failureOf(status);
  if (failure && !options.changed) {
    await client.restart(name, { onlyFailed: true });
    log(`connector ${name}: restarted the failed instances (${failure})`);
    return 'restarted';
  }
  return null;
}

/**
 * Polls until the connector and all its tasks are RUNNING. After a config change it first waits
 * for the tasks to carry the new config (right after the PUT the old tasks still report RUNNING),
 * and then for RUNNING to hold for a moment (a task can fail right after it starts, e.g. while the
 * previous one still holds the replication slot).
 */
export async function waitUntilRunning(
  client: ConnectClient,
  desired: RenderedConnector,
  options: { timeoutMs: number; pollMs: number; changed: boolean; settleMs?: number; failureGraceMs?: number },
): Promise<ConnectorSummary> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const settleMs = options.changed ? (options.settleMs ?? 3000) : 0;
  let runningSince: number | null = null;
  let last = 'no status yet';
  let tasksUpdated = !options.changed;
  while (Date.now() < deadline) {
    try {
      if (!tasksUpdated) {
        const tasks = await client.getTasks(desired.name);
        tasksUpdated =
          tasks !== null &&
          tasks.length > 0 &&
          tasks.every((t) =>
            Object.entries(desired.config).every(
              ([k, v]) => k === 'tasks.max' || t.config[k] === undefined || t.config[k] === v,
            ),
          );
      }
      const status = await client.getStatus(desired.name);
      if (status) {
        const failure = failureOf(status);
        if (failure && Date.now() - started >= (options.failureGraceMs ?? 0)) throw new ConnectorFailedError(failure);
        last = `${status.connector.state}, tasks: ${status.tasks.map((t) => `${t.id}=${t.state}`).join(',') || 'none'}`;
        if (tasksUpdated && isRunning(status)) {
          runningSince ??= Date.now();
          if (Date.now() - runningSince >= settleMs) return summarizeStatus(status);
        } else {
          runningSince = null;
        }
      }
    } catch (error) {
      if (!(error instanceof RetriableError)) throw error;
      last = describeError(error);
    }
    await sleep(options.pollMs);
  }
  throw new RetriableError(
    `connector ${desired.name} not RUNNING after ${Math.round(options.timeoutMs / 1000)} s (${last})`,
  );
}

export interface SlotReport {
  slot_name: string;
  exists: boolean;
  active?: boolean;
  active_pid?: number | null;
  confirmed_flush_lsn?: string | null;
  retained_wal_bytes?: number | null;
  /** PostgreSQL's `wal_status`: reserved, extended, unreserved, or lost (invalidated). */
  wal_status?: string | null;
}

export interface StatusReport {
  connector: string;
  exists: boolean;
  status?: ConnectorSummary;
  running: boolean;
  failure?: string;
  config_in_sync?: boolean;
  changed_keys?: string[];
  slot?: SlotReport;
}

/** The connector's status, whether its config matches the rendered one, and its slot (when `slot` is given). */
export async function connectorStatus(
  config: Config,
  slot?: (slotName: string) => Promise<SlotReport>,
): Promise<StatusReport> {
  const desired = await renderConnectorFromConfig(config);
  const client = new ConnectClient(config.connectUrl);
  const [status, live] = await Promise.all([client.getStatus(desired.name), client.getConfig(desired.name)]);
  const report: StatusReport = { connector: desired.name, exists: status !== null, running: false };
  if (status) {
    report.status = summarizeStatus(status);
    report.running = isRunning(status);
    const failure = failureOf(status);
    if (failure) report.failure = failure;
  }
  if (live) {
    report.changed_keys = configDifferences(live, desired.config);
    report.config_in_sync = report.changed_keys.length === 0;
  }
  if (slot) report.slot = await slot(slotName(config.topicPrefix));
  return report;
}

export { redactConnectorConfig };
