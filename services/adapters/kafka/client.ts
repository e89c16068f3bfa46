/** The kafkajs side of the adapter: client construction and log bridging. */
import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '../telemetry/log.ts';

export type { Kafka };

export function createKafka(brokers: string[], clientId: string, log: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 200, retries: 8 },
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        if (level <= logLevel.ERROR) log.error(rest, `kafka: ${message}`);
        else if (level === logLevel.WARN) log.warn(rest, `kafka: ${message}`);
        else log.debug(rest, `kafka: ${message}`);
      },
  });
}

/** One metadata request with short timeouts and no retries or logs: is a broker answering? */
export async function describeCluster(
  brokers: string[],
): Promise<Awaited<ReturnType<ReturnType<Kafka['admin']>['describeCluster']>>> {
  const kafka = new Kafka({
    clientId: 'vecsync-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await admin.describeCluster();
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export function headersToStrings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined || v === null) continue;
    const first = Array.isArray(v) ? v[0] : v;
    out[k] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}
