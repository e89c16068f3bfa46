/** Keeps the DLQ size gauge current while services run: a growing DLQ is an alert, not a log line. */
import type { Kafka } from '../../adapters/kafka/client.ts';
import { SERVICES, type Topics } from '../../adapters/kafka/topics.ts';
import { metrics } from '../../adapters/telemetry/metrics.ts';

export function startDlqMonitor(kafka: Kafka, topics: Topics, intervalMs = 30_000): { stop(): Promise<void> } {
  const admin = kafka.admin();
  let connected: Promise<void> | undefined;
  const refresh = async () => {
    connected ??= admin.connect();
    await connected;
    const existing = new Set(await admin.listTopics());
    for (const service of SERVICES) {
      const topic = topics.dlq(service);
      if (!existing.has(topic)) continue;
      const offsets = await admin.fetchTopicOffsets(topic);
      metrics.deadLetters.set(
        { service },
        offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0),
      );
    }
  };
  // A failed refresh keeps the last value; the next one tries again.
  const tick = () => void refresh().catch(() => undefined);
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      if (connected) await admin.disconnect().catch(() => undefined);
    },
  };
}
