/**
 * The pure parts of `minilm`: truncation, packing a batch into the model's input tensors, and
 * mean pooling with L2 normalisation. Tested without the model.
 */

/** [CLS] and [SEP] of the BERT WordPiece vocabulary this model uses. */
export const CLS_ID = 101;
export const SEP_ID = 102;

/**
 * Most word pieces (with [CLS] and [SEP]) of one input. The model has 512 positions, but
 * all-MiniLM-L6-v2 was trained on 128 and sentence-transformers uses it with 256; longer inputs
 * cost quadratic time for little gain. The tokenizer.json in the jar declares 128; 256 keeps a
 * whole default chunk (800 characters, usually 150-200 word pieces) in view.
 */
export const DEFAULT_MAX_TOKENS = 256;
export const MODEL_MAX_POSITIONS = 512;

/**
 * Cuts an encoded input (`[CLS] ... [SEP]`) to `maxTokens`: the first `maxTokens - 2` word pieces
 * are kept and [SEP] closes the sequence, as Hugging Face's `truncation=True` does for one text.
 * The rest of the text does not contribute to the vector.
 */
export function truncate(ids: readonly number[], maxTokens: number): { ids: number[]; truncated: boolean } {
  if (ids.length <= maxTokens) return { ids: [...ids], truncated: false };
  return { ids: [...ids.slice(0, maxTokens - 1), SEP_ID], truncated: true };
}

export interface PackedBatch {
  batch: number;
  length: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
}

/** Pads a batch to its longest input (pad id 0, mask 0); token types are all 0 (one segment). */
export function pack(sequences: readonly (readonly number[])[]): PackedBatch {
  const batch = sequences.length;
  const length = Math.max(1, ...sequences.map((s) => s.length));
  const inputIds = new BigInt64Array(batch * length);
  const attentionMask = new BigInt64Array(batch * length);
  sequences.forEach((s, b) => {
    for (let j = 0; j < s.length; j++) {
      inputIds[b * length + j] = BigInt(s[j]!);
      attentionMask[b * length + j] = 1n;
    }
  });
  return { batch, length, inputIds, attentionMask, tokenTypeIds: new BigInt64Array(batch * length) };
}

/**
 * Sentence vectors from `last_hidden_state` ([batch, length, dims], row-major): the mean of the
 * token vectors under the attention mask, scaled to unit length.
 */
export function meanPool(hidden: Float32Array, packed: PackedBatch, dims: number): Float32Array[] {
  const { batch, length, attentionMask } = packed;
  if (hidden.length !== batch * length * dims) {
    throw new RangeError(`hidden state has ${hidden.length} values, expected ${batch}×${length}×${dims}`);
  }
  const out: Float32Array[] = [];
  const acc = new Float64Array(dims);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    let tokens = 0;
    for (let j = 0; j < length; j++) {
      if (attentionMask[b * length + j] === 0n) continue;
      tokens++;
      const base = (b * length + j) * dims;
      for (let k = 0; k < dims; k++) acc[k] = acc[k]! + hidden[base + k]!;
    }
    let sum = 0;
    for (let k = 0; k < dims; k++) {
      acc[k] = acc[k]! / Math.max(tokens, 1);
      sum += acc[k]! * acc[k]!;
    }
    const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    const v = new Float32Array(dims);
    for (let k = 0; k < dims; k++) v[k] = acc[k]! * scale;
    out.push(v);
  }
  return out;
}

/**
 * Splits indices into inference batches of at most `size`, inputs of similar length together
 * (sorted by token count), so that little compute goes to padding. Returns batches of indices
 * into the original order.
 */
export function lengthBatches(lengths: readonly number[], size: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += size) batches.push(order.slice(i, i + size));
  return batches;
}
