/** The interface every local-stack component implements, and what `up`/`status` report. */
import type { ComponentName, StackPaths } from './paths.ts';
import type { PortClaim } from './ports.ts';

/** Loopback ports of the local stack's components (`VECSYNC_*_PORT`). */
export interface Ports {
  pg: number;
  kafka: number;
  kafkaController: number;
  registry: number;
  connect: number;
}

/** What the local stack reads of the configuration (a part of `Config`). */
export interface StackSettings {
  stackHome: string;
  ports: Ports;
  sourceUrl: string;
  pgvectorUrl: string;
  /**
   * One metadata request to a broker (is it answering?). Given by the caller, so the stack does not
   * depend on the Kafka client (only the Kafka adapter does).
   */
  probeKafka(brokers: string[]): Promise<{ clusterId: string; brokers: unknown[] }>;
}

export interface StackContext {
  config: StackSettings;
  paths: StackPaths;
  /** Progress lines for the operator (one line each). */
  say(line: string): void;
}

export type ComponentState = 'up' | 'down' | 'unhealthy';

export interface ComponentStatus {
  name: ComponentName;
  /** `up`: process alive and healthy; `unhealthy`: alive but not answering; `down`: not running. */
  state: ComponentState;
  version: string;
  port: number;
  pid: number | null;
  log: string;
  /** Component-specific facts (pgvector version, wal_level, endpoint, ...). */
  details: Record<string, unknown>;
}

export interface StackComponent {
  readonly name: ComponentName;
  readonly version: string;
  /** How long `up` waits for the component to become healthy after starting it. */
  readonly readyTimeoutMs: number;
  /** The port shown in status lines. */
  mainPort(ctx: StackContext): number;
  /** Every port the component binds, checked before it is started. */
  ports(ctx: StackContext): PortClaim[];
  /** The pid of this stack's running instance (pid file present, process alive and really ours). */
  runningPid(ctx: StackContext): Promise<number | undefined>;
  /**
   * Cheap checks that fail fast with a one-line error (java or mvn missing, root needed)
   * before `up` starts anything; only called for components that are not running.
   */
  preflight?(ctx: StackContext): Promise<void>;
  /** Downloads, builds and renders config as needed; cheap when everything is cached. */
  ensureInstalled(ctx: StackContext): Promise<void>;
  /** Starts the process detached and returns its pid; does not wait for health. */
  start(ctx: StackContext): Promise<number>;
  /** One real health probe (a query, a metadata request, an HTTP endpoint), with a short timeout. */
  isHealthy(ctx: StackContext): Promise<boolean>;
  /** Idempotent set-up once healthy (e.g. databases and extensions); runs on every `up`. */
  afterHealthy?(ctx: StackContext): Promise<void>;
  /** Stops the running instance; resolves to what was done. */
  stop(ctx: StackContext): Promise<'stopped' | 'killed' | 'not-running'>;
  status(ctx: StackContext): Promise<ComponentStatus>;
}
