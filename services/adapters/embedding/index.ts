/** Embedder registry: folder name = registry key = config `type` (`VECSYNC_EMBEDDER`). */
import { ConfigError } from '../../domain/errors.ts';
import type { Embedder, EmbedderSettings } from './embedder.ts';
import { createHashing } from './hashing/index.ts';
import { createMinilm } from './minilm/index.ts';
import { createOpenAI } from './openai/index.ts';

export type { Embedder, EmbedderSettings } from './embedder.ts';

export const embedders = {
  hashing: createHashing,
  minilm: createMinilm,
  openai: createOpenAI,
} as const satisfies Record<string, (settings: EmbedderSettings) => Embedder>;

export type EmbedderType = keyof typeof embedders;

/** Creates the embedder named by `settings.type`. */
export function createEmbedder(settings: EmbedderSettings): Embedder {
  if (!Object.hasOwn(embedders, settings.type)) {
    throw new ConfigError(
      `unknown embedder ${JSON.stringify(settings.type)}; known: ${Object.keys(embedders).join(', ')}`,
    );
  }
  return embedders[settings.type as EmbedderType](settings);
}
