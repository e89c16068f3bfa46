/**
 * The versioned chunker. A chunk's content depends on the chunker's name, version and settings,
 * so all three are part of an embedding model's registration (`embedding_models.chunker`,
 * `chunker_version`, `chunk_size`, `chunk_overlap`): changing any of them is a re-embed.
 *
 * Chunks are cut from the body only. The title travels as metadata, so a title-only change
 * re-embeds nothing (the chunk hashes, and therefore the embedding cache keys, stay the same).
 */
import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { ConfigError, PoisonMessageError } from '../errors.ts';
import { sha256Hex } from './content-hash.ts';

/** Identity of this chunking algorithm. Bump `version` whenever its output can change. */
export const RECURSIVE_CHAR = { name: 'recursive-char', version: 1 } as const;

export interface ChunkerSettings {
  /** Target chunk size in characters (`VECSYNC_CHUNK_SIZE`). */
  size: number;
  /** Characters shared by neighbouring chunks (`VECSYNC_CHUNK_OVERLAP`); less than `size`. */
  overlap: number;
  /** Most chunks per document (`VECSYNC_MAX_CHUNKS`); more is a poison message. */
  maxChunks: number;
}

export interface TextChunk {
  /** Position in the document, from 0; part of the chunk id. */
  index: number;
  content: string;
  /** sha256 hex of `content`. */
  contentHash: string;
}

export interface Chunker {
  readonly name: string;
  readonly version: number;
  readonly settings: Readonly<ChunkerSettings>;
  /**
   * Splits a body into chunks; deterministic. An empty or whitespace-only body has no chunks.
   * Throws PoisonMessageError(`too_many_chunks`) past `maxChunks`.
   */
  chunk(body: string): Promise<TextChunk[]>;
}

export function createChunker(settings: ChunkerSettings): Chunker {
  const { size, overlap, maxChunks } = settings;
  if (!(Number.isInteger(size) && size > 0 && Number.isInteger(overlap) && overlap >= 0 && overlap < size)) {
    throw new ConfigError(`chunker: need integers 0 <= overlap (${overlap}) < size (${size})`);
  }
  const splitter = new RecursiveCharacterTextSplitter({ chunkSize: size, chunkOverlap: overlap });
  return {
    ...RECURSIVE_CHAR,
    settings: Object.freeze({ ...settings }),
    async chunk(body) {
      if (body.trim() === '') return [];
      checkLowerBound(body, settings);
      const pieces = (await splitter.splitText(body)).filter((piece) => piece.trim() !== '');
      if (pieces.length > maxChunks) throw tooMany(pieces.length, maxChunks);
      return pieces.map((content, index) => ({ index, content, contentHash: sha256Hex(content) }));
    },
  };
}

/**
 * Every non-whitespace character lands in some chunk of at most `size` characters, so a body
 * with more than `maxChunks * size` of them is refused before paying for the split.
 */
function checkLowerBound(body: string, { size, maxChunks }: ChunkerSettings): void {
  if (body.length <= maxChunks * size) return;
  const visible = body.replace(/\s+/g, '').length;
  const atLeast = Math.ceil(visible / size);
  if (atLeast > maxChunks) throw tooMany(atLeast, maxChunks, 'at least ');
}

function tooMany(count: number, maxChunks: number, qualifier = ''): PoisonMessageError {
  return new PoisonMessageError(
    'too_many_chunks',
    `body splits into ${qualifier}${count} chunks, more than ${maxChunks}`,
  );
}
