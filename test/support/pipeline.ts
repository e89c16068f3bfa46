/**
 * Runs the real services in the test process against the shared stack, isolated by a unique sink
 * name and consumer-group prefix. Groups start at the current end of their topics, so a test only
 * sees the events it causes (the topics are shared with every other test and the demo).
 */
import pg from 'pg';
import { loadConfig, type Config } from '../../services/config/index.ts';
import { createEmbedderService } from '../../services/pipeline/embedder/index.ts';
import { provisionTopics } from '../../services/adapters/kafka/admin.ts';
import type { InMessage, Outcome } from '../../services/adapters/kafka/message.ts';
import { createPropagatorService } from '../../services/pipeline/propagator/index.ts';
import type { Service } from '../../services/pipeline/runtime/service.ts';
import type { SliceTiming } from '../../services/adapters/kafka/runner.ts';
import { createRuntime, type Runtime } from '../../services/pipeline/runtime/index.ts';
import type { Sink, StoredChunk } from '../../services/adapters/sinks/types.ts';
import type { Embedder } from '../../services/adapters/embedding/index.ts';
import { createWriterService } from '../../services/pipeline/writer/index.ts';
import { randomBytes } from 'node:crypto';
import { ensureStack } from './stack.ts';
import { withAdmin } from './kafka.ts';
import { waitFor } from './wait.ts';

export type PipelineService = 'embedder' | 'writer' | 'propagator';

export interface Committed {
  message: InMessage;
  outcome: Outcome;
  /** The slice's timing, shared by every message of the slice. */
  timing: SliceTiming;
}

export interface TestPipeline {
  config: Config;
  rt: Runtime;
  sink: Sink;
  source: pg.Pool;
  /** Every message each service committed, in commit order. */
  committed: Record<PipelineService, Committed[]>;
  stop(): Promise<void>;
}

export function testSinkName(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** Moves a group (not running) to the end of each topic, so it consumes only what comes next. */
export async function groupAtEnd(config: Config, groupId: string, topics: string[]): Promise<void> {
  await withAdmin(config.kafkaBrokers, async (admin) => {
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.setOffsets({
        groupId,
        topic,
        partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
      });
    }
  });
}

/** Whether a group has committed up to the end of every partition of the topics (nothing left to redeliver). */
export async function groupCaughtUp(config: Config, groupId: string, topics: string[]): Promise<boolean> {
  return withAdmin(config.kafkaBrokers, async (admin) => {
    const committed = await admin.fetchOffsets({ groupId, topics });
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
      for (const end of ends) {
        const at = mine.find((c) => c.partition === end.partition)?.offset ?? '-1';
        if (BigInt(end.high) > 0n && BigInt(at) < BigInt(end.high)) return false;
      }
    }
    return true;
  });
}

export async function startPipeline(
  label: string,
  options: {
    services?: PipelineService[];
    env?: Record<string, string>;
    /** The embedding provider the embedder service uses (default: the configured one). */
    embedder?: Embedder;
  } = {},
): Promise<TestPipeline> {
  await ensureStack();
  const sinkName = testSinkName();
  const config = loadConfig({
    ...process.env,
    // Fast and deterministic; a test that needs the real model passes VECSYNC_EMBEDDER in `env`.
    VECSYNC_EMBEDDER: 'hashing',
    VECSYNC_LOG_LEVEL: 'warn',
    VECSYNC_METRICS_PORT: '0',
    VECSYNC_SINK_NAME: sinkName,
    VECSYNC_GROUP_PREFIX: `test.${label}.${sinkName}`,
    // Short backoff under test (the policy is the same, only faster).
    VECSYNC_RETRY_INITIAL_MS: '50',
    VECSYNC_RETRY_MAX_MS: '1000',
    ...options.env,
  });
  const rt = await createRuntime(config, `test-${label}`);
  const chunkTopic = rt.topics.chunks(rt.activeIndex.modelKey);
  await provisionTopics(rt.kafka, [{ topic: chunkTopic, partitions: 6, configs: {} }]);
  const committed: Record<PipelineService, Committed[]> = { embedder: [], writer: [], propagator: [] };
  const record = (service: PipelineService) => (messages: InMessage[], outcomes: Outcome[], timing: SliceTiming) => {
    messages.forEach((message, i) => committed[service].push({ message, outcome: outcomes[i]!, timing }));
  };
  const wanted = options.services ?? ['propagator', 'embedder', 'writer'];
  const services: Service[] = [];
  for (const name of wanted) {
    if (name === 'embedder') {
      for (const lane of ['live', 'bulk'] as const) {
        await groupAtEnd(config, `${rt.groupId('embedder')}.${lane}`, [rt.topics.lane(lane)]);
      }
      services.push(
        await createEmbedderService(rt, {
          onCommitted: record('embedder'),
          ...(options.embedder ? { embedder: options.embedder } : {}),
        }),
      );
    } else if (name === 'writer') {
      await groupAtEnd(config, rt.groupId('writer'), [chunkTopic]);
      services.push(await createWriterService(rt, { onCommitted: record('writer') }));
    } else {
      await groupAtEnd(config, rt.groupId('propagator'), [rt.topics.lane('priority')]);
      services.push(await createPropagatorService(rt, { onCommitted: record('propagator') }));
    }
  }
  try {
    await Promise.all(services.map((s) => s.start()));
  } catch (error) {
    // The services that did start would keep running (and the test process alive): stop them.
    await Promise.allSettled(services.map((s) => s.stop()));
    await rt.close();
    throw error;
  }
  const sink = rt.sink;
  await sink.ensureIndex(rt.activeIndex);
  return {
    config,
    rt,
    sink,
    source: rt.source,
    committed,
    async stop() {
      await Promise.allSettled(services.map((s) => s.stop()));
      await rt.close();
    },
  };
}

/** Waits until the sink's ledger holds `version` (or newer) for the document. */
export async function waitForVersion(
  p: TestPipeline,
  tenant: string,
  document: string,
  version: number,
  timeoutMs = 60_000,
) {
  return waitFor(
    async () => {
      const res = await p.source.query<{ version: string; tombstone: boolean }>(
        `SELECT version, tombstone FROM vecsync.sync_state
          WHERE sink_name = $1 AND tenant_id = $2 AND document_id = $3 AND model_key = $4`,
        [p.config.sink.name, tenant, document, p.rt.activeIndex.modelKey],
      );
      const row = res.rows[0];
      return row && Number(row.version) >= version ? row : undefined;
    },
    { timeoutMs, description: `${tenant}:${document} at version ${version} in sink ${p.config.sink.name}` },
  );
}

/** The sink's chunks of a tenant, with embeddings: a dump to compare before and after. */
export function dump(p: TestPipeline, tenant: string, document?: string): Promise<StoredChunk[]> {
  return p.sink.inspect(p.rt.activeIndex, tenant, document, { includeEmbeddings: true });
}

export interface SourceDocument {
  tenant: string;
  id: string;
  title?: string;
  body: string;
  acl?: string[];
  metadata?: Record<string, unknown>;
  restricted?: Record<string, unknown>;
  status?: 'active' | 'archived' | 'deleted';
}

/** Inserts documents (ACL first, as an application would) in one transaction; returns their versions. */
export async function insertDocuments(pool: pg.Pool, docs: SourceDocument[]): Promise<Map<string, number>> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const d of docs) {
      for (const principal of d.acl ?? []) {
        await client.query('INSERT INTO vecsync.document_acl (tenant_id, document_id, principal) VALUES ($1, $2, $3)', [
          d.tenant,
          d.id,
          principal,
        ]);
      }
    }
    const versions = new Map<string, number>();
    for (const d of docs) {
      const res = await client.query<{ version: string }>(
        `INSERT INTO vecsync.documents (tenant_id, document_id, title, body, language, status, metadata, restricted)
         VALUES ($1, $2, $3, $4, 'en', $5, $6, $7) RETURNING version`,
        [
          d.tenant,
          d.id,
          d.title ?? d.id,
          d.body,
          d.status ?? 'active',
          JSON.stringify(d.metadata ?? {}),
          JSON.stringify(d.restricted ?? {}),
        ],
      );
      versions.set(d.id, Number(res.rows[0]!.version));
    }
    await client.query('COMMIT');
    return versions;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Runs one UPDATE of a document and returns its new version. */
export async function updateDocument(
  pool: pg.Pool,
  tenant: string,
  id: string,
  set: string,
  values: unknown[] = [],
): Promise<number> {
  const res = await pool.query<{ version: string }>(
    `UPDATE vecsync.documents SET ${set} WHERE tenant_id = $1 AND document_id = $2 RETURNING version`,
    [tenant, id, ...values],
  );
  if (res.rowCount !== 1) throw new Error(`no document ${tenant}:${id}`);
  return Number(res.rows[0]!.version);
}

/** The document ids a search of `text` as `principal` returns from the pipeline's active index. */
export async function searchIds(
  p: TestPipeline,
  embedder: Embedder,
  tenant: string,
  principal: string,
  text: string,
  topK = 10,
): Promise<string[]> {
  const [vector] = await embedder.embed([text]);
  const hits = await p.sink.search({
    modelKey: p.rt.activeIndex.modelKey,
    tenantId: tenant,
    principal,
    vector: vector!,
    topK,
  });
  return hits.map((h) => h.documentId);
}
