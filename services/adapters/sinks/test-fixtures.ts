/** Test data shared by the sinks' unit tests (no test runner import, so it is safe to import). */
import type { DocumentWrite } from './types.ts';

/** A well-formed write of two chunks (`dims`-wide embeddings) that each test bends one way. */
export function sampleWrite(overrides: Partial<DocumentWrite> = {}, dims = 3): DocumentWrite {
  return {
    tenantId: 't1',
    documentId: 'doc:1#x',
    documentVersion: 2,
    chunkCount: 2,
    contentHash: 'h',
    title: 'T',
    metadata: { category: 'a' },
    chunks: [0, 1].map((index) => ({
      index,
      content: `c${index}`,
      contentHash: `h${index}`,
      embedding: new Float32Array(dims).fill(index + 0.5),
    })),
    acl: { principals: ['alice'], aclVersion: 3 },
    ...overrides,
  };
}
