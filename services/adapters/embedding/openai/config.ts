/** The openai provider's section of the root configuration (`config.embedder.openai`). */
import { z } from 'zod';
import { setting } from '../../../domain/settings.ts';

export const OPENAI_SETTINGS = {
  baseUrl: setting({
    env: 'VECSYNC_OPENAI_BASE_URL',
    schema: z.string().url(),
    default: 'http://127.0.0.1:11434/v1',
    doc: 'OpenAI-compatible API base URL (OpenAI, Ollama, vLLM, TEI); `/embeddings` is appended.',
  }),
  apiKey: setting({
    env: 'VECSYNC_OPENAI_API_KEY',
    schema: z.string(),
    default: '',
    secret: true,
    doc: 'API key for the openai embedder.',
  }),
  model: setting({
    env: 'VECSYNC_OPENAI_MODEL',
    schema: z.string().min(1),
    default: 'text-embedding-3-small',
    doc: 'Model name sent to the OpenAI-compatible endpoint.',
  }),
};
