/**
 * The ONNX sessions of the minilm embedder, run on a worker thread (`inference-worker.mjs`). An
 * inference takes ~10 ms of CPU per text and onnxruntime-node computes it synchronously on the
 * calling thread: on the service's thread it would stall every Kafka heartbeat, fetch and sink
 * write behind it, and the service's own work would add to the model's time instead of running
 * beside it on the other core.
 *
 * The process has one such thread, started on first use and kept (onnxruntime's addon cannot be
 * loaded into a second thread after the first ended). It keeps the process alive only while a
 * call is awaited, so a CLI that embedded one query still exits by itself.
 */
import { Worker } from 'node:worker_threads';
import { assetPath } from '../../../domain/assets.ts';
import { ConfigError, RetriableError } from '../../../domain/errors.ts';
import type { PackedBatch } from './encode.ts';

export interface Inference {
  /** The model's `last_hidden_state` for a packed batch (batch × length × 384 values). */
  run(packed: PackedBatch): Promise<Float32Array>;
  /** Releases the session; later runs fail. */
  release(): Promise<void>;
}

interface Reply {
  id: number;
  error?: string;
  handle?: number;
  outputNames?: string[];
  data?: Float32Array;
}

const WORKER = assetPath('services', 'adapters', 'embedding', 'minilm', 'inference-worker.mjs');

interface Thread {
  call(message: Record<string, unknown>): Promise<Reply>;
}

let thread: Thread | undefined;

function inferenceThread(): Thread {
  if (thread) return thread;
  const worker = new Worker(WORKER);
  const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const settle = (id: number) => {
    const p = pending.get(id);
    pending.delete(id);
    if (pending.size === 0) worker.unref();
    return p;
  };
  worker.on('message', (reply: Reply) => {
    const p = settle(reply.id);
    if (reply.error !== undefined) p?.reject(new RetriableError(`minilm inference: ${reply.error}`));
    else p?.resolve(reply);
  });
  let ended: Error | undefined;
  const fail = (error: Error) => {
    ended = error;
    for (const id of [...pending.keys()]) settle(id)?.reject(error);
  };
  // Another thread could not load the addon again: the process must be restarted.
  worker.on('error', (error) =>
    fail(
      new RetriableError(`minilm inference thread failed (restart the service): ${error.message}`, { cause: error }),
    ),
  );
  worker.on('exit', (code) =>
    fail(new RetriableError(`minilm inference thread exited with ${code} (restart the service)`)),
  );
  worker.unref();
  const current: Thread = {
    call(message) {
      if (ended) return Promise.reject(ended);
      const id = nextId++;
      return new Promise<Reply>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (pending.size === 1) worker.ref();
        worker.postMessage({ ...message, id });
      });
    },
  };
  thread = current;
  return current;
}

export async function startInference(onnx: string, threads: number): Promise<Inference> {
  const worker = inferenceThread();
  const loaded = await worker.call({ type: 'load', onnx, threads });
  const handle = loaded.handle!;
  if (loaded.outputNames?.[0] !== 'last_hidden_state') {
    await worker.call({ type: 'release', handle });
    throw new ConfigError(`minilm embedder: unexpected model output ${String(loaded.outputNames?.[0])} in ${onnx}`);
  }
  return {
    async run(packed) {
      return (await worker.call({ type: 'run', handle, ...packed })).data!;
    },
    async release() {
      await worker.call({ type: 'release', handle });
    },
  };
}
