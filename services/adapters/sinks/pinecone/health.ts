/**
 * The Pinecone sink's health check: the active model's index answers with this API key.
 *
 * Host mode asks the index itself (`describe_index_stats`, data plane only). Name mode asks the
 * control plane for the index; an index that does not exist yet is healthy (the writer's
 * `ensureIndex` creates it), a rejected key is a CredentialsError, no answer is a RetriableError.
 */
import type { Pinecone } from '@pinecone-database/pinecone';
import { classifyPineconeError } from './errors.ts';
import type { IndexTarget } from './targets.ts';

export interface PineconeHealth {
  index: string;
  /** Vectors in the index (host mode), or undefined (name mode, or the index does not exist yet). */
  vectors?: number;
  dimension?: number;
}

/** `call` runs a request with the sink's retries and error mapping. */
export async function checkPineconeHealth(
  client: Pinecone,
  target: IndexTarget,
  call: <T>(what: string, op: () => Promise<T>) => Promise<T>,
): Promise<PineconeHealth> {
  if (target.host !== undefined) {
    const index = client.index({ name: target.name, host: target.host });
    const stats = await call('health check', () => index.describeIndexStats());
    return {
      index: target.name,
      ...(stats.totalRecordCount !== undefined ? { vectors: stats.totalRecordCount } : {}),
      ...(stats.dimension !== undefined ? { dimension: stats.dimension } : {}),
    };
  }
  try {
    const model = await call('health check', () => client.describeIndex(target.name));
    return { index: target.name, ...(model.dimension !== undefined ? { dimension: model.dimension } : {}) };
  } catch (error) {
    if (classifyPineconeError(error) === 'not_found') return { index: target.name };
    throw error;
  }
}
