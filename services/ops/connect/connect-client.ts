/**
 * A small Kafka Connect REST client: the calls vecsync needs, with Connect's errors turned
 * into vecsync's (unreachable or rebalancing: retriable; a rejected config: ConfigError).
 */
import { ConfigError, RetriableError } from '../../domain/errors.ts';

export type ConnectState = 'RUNNING' | 'PAUSED' | 'STOPPED' | 'FAILED' | 'UNASSIGNED' | 'RESTARTING';

export interface TaskStatus {
  id: number;
  state: ConnectState;
  worker_id: string;
  trace?: string;
}

export interface ConnectorStatus {
  name: string;
  connector: { state: ConnectState; worker_id: string; trace?: string };
  tasks: TaskStatus[];
  type?: string;
}

export interface TaskInfo {
  id: { connector: string; task: number };
  config: Record<string, string>;
}

export class ConnectClient {
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs = 15_000,
  ) {}

  /** The connector's config, or null when no such connector exists. */
  async getConfig(name: string): Promise<Record<string, string> | null> {
    return this.request<Record<string, string>>(
      'GET',
      `/connectors/${encodeURIComponent(name)}/config`,
      undefined,
      true,
    );
  }

  /** Creates or updates the connector (Connect restarts it when the config changed). */
  async putConfig(name: string, config: Record<string, string>): Promise<void> {
    await this.request('PUT', `/connectors/${encodeURIComponent(name)}/config`, config);
  }

  async getStatus(name: string): Promise<ConnectorStatus | null> {
    return this.request<ConnectorStatus>('GET', `/connectors/${encodeURIComponent(name)}/status`, undefined, true);
  }

  async getTasks(name: string): Promise<TaskInfo[] | null> {
    return this.request<TaskInfo[]>('GET', `/connectors/${encodeURIComponent(name)}/tasks`, undefined, true);
  }

  /**
   * Stops the connector and its tasks (Kafka 3.5+): unlike a pause, the tasks shut down, so the
   * Debezium task releases its replication slot. `resume` starts it again.
   */
  async stop(name: string): Promise<void> {
    await this.request('PUT', `/connectors/${encodeURIComponent(name)}/stop`);
  }

  /** Resumes a PAUSED or STOPPED connector. */
  async resume(name: string): Promise<void> {
    await this.request('PUT', `/connectors/${encodeURIComponent(name)}/resume`);
  }

  /** Restarts the connector and its tasks (only the failed ones with `onlyFailed`). */
  async restart(name: string, options: { onlyFailed?: boolean } = {}): Promise<void> {
    const query = `includeTasks=true&onlyFailed=${options.onlyFailed === true}`;
    await this.request('POST', `/connectors/${encodeURIComponent(name)}/restart?${query}`);
  }

  /** Deletes the connector (no error when there is none). Its source offsets stay in Connect. */
  async delete(name: string): Promise<void> {
    await this.request('DELETE', `/connectors/${encodeURIComponent(name)}`, undefined, true);
  }

  async plugins(): Promise<Array<{ class: string; type: string; version?: string }>> {
    return (await this.request<Array<{ class: string; type: string; version?: string }>>('GET', '/connector-plugins'))!;
  }

  private async request<T>(method: string, route: string, body?: unknown, allow404 = false): Promise<T | null> {
    const url = new URL(route, this.baseUrl).toString();
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      throw new RetriableError(
        `Kafka Connect is not reachable at ${this.baseUrl} (${cause?.code ?? (error as Error).message})`,
        { cause: error },
      );
    }
    const text = await response.text();
    if (response.status === 404 && allow404) return null;
    if (!response.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // not JSON: keep the text
      }
      const line = `${method} ${route}: HTTP ${response.status}: ${message.split('\n')[0]}`;
      // 409: a rebalance is in progress; 5xx: the worker is starting or unhealthy.
      if (response.status === 409 || response.status >= 500) throw new RetriableError(`Kafka Connect ${line}`);
      throw new ConfigError(`Kafka Connect rejected ${line}`);
    }
    return (text === '' ? null : JSON.parse(text)) as T;
  }
}
