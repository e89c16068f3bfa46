// The minilm inference thread (plain JavaScript: it runs from the sources and from the bundle
// alike, without a TypeScript loader). onnxruntime-node runs an inference synchronously on the
// thread that calls it; here that is this worker, so the service's own thread stays free for
// Kafka, PostgreSQL and encoding while the model computes, and is never blocked by it.
//
// One thread per process holds every session: onnxruntime's native addon cannot be loaded again
// in a new thread once a thread that loaded it has ended ("Module did not self-register").
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const sessions = new Map();
let nextSession = 0;

function reply(id, body, transfer) {
  parentPort.postMessage({ id, ...body }, transfer ?? []);
}

async function handle(m) {
  if (m.type === 'load') {
    const session = await ort.InferenceSession.create(m.onnx, {
      intraOpNumThreads: m.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const handle = nextSession++;
    sessions.set(handle, session);
    return reply(m.id, { handle, outputNames: session.outputNames });
  }
  const session = sessions.get(m.handle);
  if (!session) throw new Error(`no session ${m.handle} (released)`);
  if (m.type === 'release') {
    sessions.delete(m.handle);
    await session.release();
    return reply(m.id, {});
  }
  const shape = [m.batch, m.length];
  const result = await session.run({
    input_ids: new ort.Tensor('int64', m.inputIds, shape),
    attention_mask: new ort.Tensor('int64', m.attentionMask, shape),
    token_type_ids: new ort.Tensor('int64', m.tokenTypeIds, shape),
  });
  const hidden = result.last_hidden_state;
  // A copy the main thread can own: the tensor's memory belongs to the runtime.
  const data = new Float32Array(hidden.data);
  hidden.dispose();
  return reply(m.id, { data }, [data.buffer]);
}

parentPort.on('message', (m) => {
  handle(m).catch((error) => reply(m.id, { error: error instanceof Error ? error.message : String(error) }));
});
