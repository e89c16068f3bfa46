/**
 * A local stand-in for an OpenAI-compatible embeddings API (`POST /v1/embeddings`), faithful to
 * the contract the openai embedder relies on, with knobs for the faults a real one has.
 *
 * Contract kept: JSON `{model, input}` where input is a string or an array of strings; 400 with an
 * OpenAI-style `{error: {message, type, param, code}}` body when `model` or `input` is missing or
 * invalid; 401 without the right `Authorization: Bearer <key>` when a key is configured; 404 for
 * other routes; `{object: 'list', data: [{object: 'embedding', index, embedding}], model, usage}`.
 * Embeddings are deterministic per text (`fakeEmbedding`). `data` is returned in reverse order so
 * that a client relying on array order instead of `index` fails its tests.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OpenAIServerKnobs {
  /** Length of every returned vector (set it wrong to test dimension checks). */
  dimensions: number;
  /** Delay before answering each request. */
  latencyMs: number;
  /** Answer the next N requests with 429. */
  fail429: number;
  /** `Retry-After` header (seconds or HTTP date) sent with a 429, if any. */
  retryAfter: string | undefined;
  /** `retry-after-ms` header sent with a 429, if any. */
  retryAfterMs: string | undefined;
  /** Answer the next N requests with 500. */
  fail500: number;
  /** Answer the next N requests by closing the connection without a response. */
  dropConnections: number;
  /**
   * Answer every request with 401 (`invalid_api_key`) until this time (epoch ms), as a provider
   * does while a rotated key propagates. 0: never.
   */
  unauthorizedUntil: number;
}

export interface RecordedRequest {
  model: unknown;
  input: unknown;
  authorization: string | undefined;
  status: number;
}

export interface OpenAIServer {
  /** Base URL including `/v1`, as `VECSYNC_OPENAI_BASE_URL` takes it. */
  url: string;
  /** Mutable between requests. */
  knobs: OpenAIServerKnobs;
  /** Every request received, in order, with the status it was answered with. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface OpenAIServerOptions extends Partial<OpenAIServerKnobs> {
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
}

const MAX_INPUTS = 2048;

/** The deterministic unit vector the server returns for `text`. */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  let state = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) state = Math.imul(state ^ text.charCodeAt(i), 0x01000193);
  const values: number[] = [];
  for (let i = 0; i < dimensions; i++) {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    values.push(((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5);
  }
  const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0)) || 1;
  return values.map((v) => v / norm);
}

export async function startOpenAIServer(options: OpenAIServerOptions = {}): Promise<OpenAIServer> {
  const { apiKey, ...knobOverrides } = options;
  const knobs: OpenAIServerKnobs = {
    dimensions: 16,
    latencyMs: 0,
    fail429: 0,
    retryAfter: undefined,
    retryAfterMs: undefined,
    fail500: 0,
    dropConnections: 0,
    unauthorizedUntil: 0,
    ...knobOverrides,
  };
  const requests: RecordedRequest[] = [];

  const server = createServer((req, res) => {
    handle(req, res, knobs, apiKey, requests).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, errorBody(String(error), 'server_error'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    knobs,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  knobs: OpenAIServerKnobs,
  apiKey: string | undefined,
  requests: RecordedRequest[],
): Promise<void> {
  const raw = await readBody(req);
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      body = parsed as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  const record: RecordedRequest = {
    model: body?.model,
    input: body?.input,
    authorization: req.headers.authorization,
    status: 0,
  };
  requests.push(record);
  const reply = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
    record.status = status;
    send(res, status, payload, headers);
  };

  if (knobs.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, knobs.latencyMs));
  if (knobs.dropConnections > 0) {
    knobs.dropConnections--;
    record.status = -1;
    req.socket.destroy();
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
    return reply(404, errorBody(`Invalid URL (${req.method} ${req.url})`, 'invalid_request_error'));
  }
  if (
    (apiKey !== undefined && req.headers.authorization !== `Bearer ${apiKey}`) ||
    Date.now() < knobs.unauthorizedUntil
  ) {
    return reply(401, errorBody('Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key'));
  }
  if (knobs.fail429 > 0) {
    knobs.fail429--;
    const headers: Record<string, string> = {};
    if (knobs.retryAfter !== undefined) headers['retry-after'] = knobs.retryAfter;
    if (knobs.retryAfterMs !== undefined) headers['retry-after-ms'] = knobs.retryAfterMs;
    return reply(429, errorBody('Rate limit reached for requests.', 'requests', null, 'rate_limit_exceeded'), headers);
  }
  if (knobs.fail500 > 0) {
    knobs.fail500--;
    return reply(500, errorBody('The server had an error while processing your request.', 'server_error'));
  }
  const invalid = validate(body);
  if (invalid) return reply(400, errorBody(invalid.message, 'invalid_request_error', invalid.param));

  const inputs = typeof body!.input === 'string' ? [body!.input] : (body!.input as string[]);
  const data = inputs.map((text, index) => ({
    object: 'embedding',
    index,
    embedding: fakeEmbedding(text, knobs.dimensions),
  }));
  const tokens = inputs.reduce((n, text) => n + Math.ceil(text.length / 4), 0);
  reply(200, {
    object: 'list',
    data: data.reverse(),
    model: body!.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

function validate(body: Record<string, unknown> | undefined): { message: string; param: string | null } | undefined {
  if (body === undefined) return { message: 'We could not parse the JSON body of your request.', param: null };
  if (typeof body.model !== 'string' || body.model === '') {
    return { message: 'You must provide a model parameter.', param: 'model' };
  }
  const input = body.input;
  if (input === undefined) return { message: "'input' is a required property", param: 'input' };
  const list = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_INPUTS) {
    return { message: "'$.input' is invalid.", param: 'input' };
  }
  if (!list.every((text) => typeof text === 'string' && text.length > 0)) {
    return { message: "'$.input' is invalid. Every input must be a non-empty string.", param: 'input' };
  }
  return undefined;
}

function errorBody(message: string, type: string, param: string | null = null, code: string | null = null): unknown {
  return { error: { message, type, param, code } };
}

function send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(payload));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
