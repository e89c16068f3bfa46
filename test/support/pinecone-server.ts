/**
 * A local Pinecone, faithful to the contract the sink relies on (Pinecone Local, the official
 * emulator, needs Docker). `node:http`, in the test process, one listener per index (Pinecone
 * serves each index at a host of its own), plus an optional control plane.
 *
 * Data plane (request and response shapes of the SDK's generated OpenAPI client,
 * `pinecone-generated-ts-fetch/db_data`):
 *
 * | route | body / query | answer |
 * |---|---|---|
 * | `POST /vectors/upsert` | `{vectors: [{id, values, metadata}], namespace}` | `{upsertedCount}` |
 * | `GET /vectors/fetch` | `ids=..&ids=..&namespace=` | `{vectors: {id: {id, values, metadata}}, namespace, usage}` |
 * | `POST /vectors/delete` | `{ids}` or `{deleteAll: true}` or `{filter}`, `namespace` | `{}` |
 * | `POST /vectors/update` | `{id, values?, setMetadata?, namespace}` or `{filter, setMetadata}` | `{}` / `{matchedRecords}` |
 * | `POST /query` | `{vector or id, topK, filter, includeValues, includeMetadata, namespace}` | `{matches: [{id, score, values, metadata}], namespace, usage}` |
 * | `GET /vectors/list` | `prefix, limit, paginationToken, namespace` | `{vectors: [{id}], pagination: {next}, namespace, usage}` |
 * | `POST /describe_index_stats` | `{}` | `{namespaces: {ns: {vectorCount}}, dimension, totalVectorCount, metric, ...}` |
 *
 * What it enforces like Pinecone: the `Api-Key` header (401 otherwise; a test may change `apiKey`
 * while it runs, as a rotated key); at most 1,000 vectors and 2 MB per upsert; at most 1,000 ids
 * per fetch or delete; vectors of the index's dimension with finite values; metadata values that
 * are strings, numbers, booleans or lists of strings (null refused), at most 40 KB per record; ids
 * of at most 512 bytes. Errors have Pinecone's body shape
 * `{"code": <grpc code>, "message": "...", "details": []}`.
 *
 * Semantics: cosine scores; metadata filters with `$eq $ne $in $nin $gt $gte $lt $lte $exists
 * $and $or`, where a list field matches `$eq`/`$in` when any element does; `list` in byte order
 * with an opaque pagination token; `update` merges `setMetadata` into an existing record and is a
 * no-op for a missing id. Eventual consistency: every write is applied to the authoritative state
 * at once and in order, and becomes visible to query, fetch, list and stats `visibilityDelayMs`
 * later (a delete too: a deleted vector stays visible that long).
 *
 * Faults for tests: `failNext(n, fault)` answers the next n requests with a fault, `failRate(p,
 * fault)` a fraction p of requests; a fault is a status (429 with an optional Retry-After, 5xx,
 * 401...) and/or a delay before answering (for timeouts). Every request is recorded (`requests`)
 * with its size, so tests can assert the limits were never exceeded.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const LIMITS = {
  maxUpsertVectors: 1000,
  /** Pinecone: "2 MB" per upsert request. */
  maxUpsertBytes: 2 * 1024 * 1024,
  maxIdsPerRequest: 1000,
  maxMetadataBytes: 40 * 1024,
  maxIdBytes: 512,
  maxTopK: 10_000,
  maxTopKWithData: 1000,
  maxListLimit: 100,
} as const;

/** gRPC status codes Pinecone puts in error bodies. */
const GRPC = {
  invalidArgument: 3,
  notFound: 5,
  resourceExhausted: 8,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
};

type MetadataValue = string | number | boolean | string[];
type Metadata = Record<string, MetadataValue>;

interface StoredRecord {
  id: string;
  values: number[];
  metadata: Metadata | undefined;
}

type Namespaces = Map<string, Map<string, StoredRecord>>;

type Operation =
  | { kind: 'upsert'; namespace: string; records: StoredRecord[] }
  | { kind: 'delete-ids'; namespace: string; ids: string[] }
  | { kind: 'delete-all'; namespace: string }
  | { kind: 'delete-filter'; namespace: string; filter: Filter }
  | { kind: 'update-id'; namespace: string; id: string; values?: number[]; setMetadata?: Metadata }
  | { kind: 'update-filter'; namespace: string; filter: Filter; setMetadata: Metadata };

type Filter = Record<string, unknown>;

export interface Fault {
  /** HTTP status to answer; omitted: answer normally after `delayMs`. */
  status?: number;
  /** Retry-After header (seconds) of the answer. */
  retryAfterSeconds?: number;
  /** Wait this long before answering (a client timeout shorter than this sees no answer). */
  delayMs?: number;
  /** Routes the fault applies to (e.g. `['/vectors/upsert']`); default every data-plane route. */
  routes?: string[];
}

export interface RecordedRequest {
  method: string;
  route: string;
  status: number;
  /** Request body bytes. */
  bytes: number;
  namespace?: string;
  /** Vectors in an upsert. */
  vectors?: number;
  /** Ids in a fetch or delete. */
  ids?: number;
  apiVersion?: string;
  faulted: boolean;
  /** When it arrived (ms since the epoch). */
  at: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const bad = (message: string) => new HttpError(400, GRPC.invalidArgument, message);

const compareBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

// ---- validation --------------------------------------------------------------------------------

function checkMetadata(value: unknown, where: string): Metadata | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw bad(`${where}: metadata must be a JSON object`);
  }
  const out: Metadata = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key.startsWith('$')) throw bad(`${where}: metadata key ${JSON.stringify(key)} must not start with $`);
    if (v === null) {
      throw bad(
        `${where}: Metadata value must be a string, number, boolean or list of strings, got 'null' for field '${key}'`,
      );
    }
    if (typeof v === 'string' || typeof v === 'boolean') out[key] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
    else if (Array.isArray(v) && v.every((e) => typeof e === 'string')) out[key] = [...(v as string[])];
    else {
      throw bad(
        `${where}: Metadata value must be a string, number, boolean or list of strings, got '${JSON.stringify(v)}' for field '${key}'`,
      );
    }
  }
  return out;
}

function checkValues(values: unknown, dimension: number, where: string): number[] {
  if (!Array.isArray(values)) throw bad(`${where}: values must be a list of numbers`);
  if (values.length !== dimension) {
    throw bad(`Vector dimension ${values.length} does not match the dimension of the index ${dimension}`);
  }
  return values.map((x) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw bad(`${where}: values must be finite numbers`);
    return Math.fround(x); // Pinecone stores float32
  });
}

function checkNamespace(value: unknown): string {
  if (value === undefined || value === '') return '__default__';
  if (typeof value !== 'string') throw bad('namespace must be a string');
  return value;
}

function checkFilter(filter: unknown, where = 'filter'): Filter {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) throw bad(`${where} must be an object`);
  for (const [key, cond] of Object.entries(filter as Filter)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(cond) || cond.length === 0) throw bad(`${key} must be a non-empty list of filters`);
      cond.forEach((c) => checkFilter(c, key));
    } else if (key.startsWith('$')) {
      throw bad(`unsupported filter operator ${key}`);
    } else if (cond !== null && typeof cond === 'object' && !Array.isArray(cond)) {
      for (const [op, arg] of Object.entries(cond as Record<string, unknown>)) {
        if (!['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists'].includes(op)) {
          throw bad(`unsupported filter operator ${op} for field ${key}`);
        }
        if ((op === '$in' || op === '$nin') && !Array.isArray(arg)) throw bad(`${op} needs a list for field ${key}`);
        if (['$gt', '$gte', '$lt', '$lte'].includes(op) && typeof arg !== 'number') {
          throw bad(`${op} needs a number for field ${key}`);
        }
        if (op === '$exists' && typeof arg !== 'boolean') throw bad(`$exists needs a boolean for field ${key}`);
      }
    } else if (cond === null || Array.isArray(cond)) {
      throw bad(`invalid filter value for field ${key}`);
    }
  }
  return filter as Filter;
}

// ---- filters -----------------------------------------------------------------------------------

function opHolds(value: MetadataValue | undefined, op: string, arg: unknown): boolean {
  const list = Array.isArray(value) ? value : undefined;
  const any = (test: (v: string | number | boolean) => boolean) =>
    list ? list.some(test) : value !== undefined && test(value as string | number | boolean);
  switch (op) {
    case '$eq':
      return any((v) => v === arg);
    case '$ne':
      return !any((v) => v === arg);
    case '$in':
      return any((v) => (arg as unknown[]).includes(v));
    case '$nin':
      return !any((v) => (arg as unknown[]).includes(v));
    case '$gt':
      return typeof value === 'number' && value > (arg as number);
    case '$gte':
      return typeof value === 'number' && value >= (arg as number);
    case '$lt':
      return typeof value === 'number' && value < (arg as number);
    case '$lte':
      return typeof value === 'number' && value <= (arg as number);
    case '$exists':
      return (value !== undefined) === arg;
    default:
      return false;
  }
}

export function matchesFilter(metadata: Metadata | undefined, filter: Filter): boolean {
  const m = metadata ?? {};
  return Object.entries(filter).every(([key, cond]) => {
    if (key === '$and') return (cond as Filter[]).every((f) => matchesFilter(metadata, f));
    if (key === '$or') return (cond as Filter[]).some((f) => matchesFilter(metadata, f));
    if (cond !== null && typeof cond === 'object' && !Array.isArray(cond)) {
      return Object.entries(cond as Record<string, unknown>).every(([op, arg]) => opHolds(m[key], op, arg));
    }
    return opHolds(m[key], '$eq', cond);
  });
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

// ---- state -------------------------------------------------------------------------------------

function apply(state: Namespaces, op: Operation): number {
  let ns = state.get(op.namespace);
  if (!ns) {
    if (op.kind !== 'upsert') return 0;
    ns = new Map();
    state.set(op.namespace, ns);
  }
  let touched = 0;
  switch (op.kind) {
    case 'upsert':
      for (const r of op.records) ns.set(r.id, r);
      touched = op.records.length;
      break;
    case 'delete-ids':
      for (const id of op.ids) if (ns.delete(id)) touched++;
      break;
    case 'delete-all':
      touched = ns.size;
      ns.clear();
      break;
    case 'delete-filter':
      for (const [id, r] of ns) if (matchesFilter(r.metadata, op.filter) && ns.delete(id)) touched++;
      break;
    case 'update-id': {
      const r = ns.get(op.id);
      if (r) {
        ns.set(op.id, {
          id: r.id,
          values: op.values ?? r.values,
          metadata: op.setMetadata ? { ...r.metadata, ...op.setMetadata } : r.metadata,
        });
        touched = 1;
      }
      break;
    }
    case 'update-filter':
      for (const [id, r] of ns) {
        if (!matchesFilter(r.metadata, op.filter)) continue;
        ns.set(id, { ...r, metadata: { ...r.metadata, ...op.setMetadata } });
        touched++;
      }
      break;
  }
  if (ns.size === 0) state.delete(op.namespace);
  return touched;
}

// ---- the index server --------------------------------------------------------------------------

export interface PineconeServerOptions {
  dimension: number;
  /** Index name (for the control plane and messages). */
  name?: string;
  apiKey?: string;
  /** Writes become visible to reads this long after they were acknowledged. */
  visibilityDelayMs?: number;
  port?: number;
}

interface ActiveFault {
  fault: Fault;
  remaining?: number;
  rate?: number;
}

export class PineconeIndexServer {
  readonly name: string;
  readonly dimension: number;
  /** The key it accepts; a test may change it (a rotated key: every request is then refused with 401). */
  apiKey: string;
  /** `http://127.0.0.1:<port>`, what VECSYNC_PINECONE_HOST takes. */
  host = '';
  visibilityDelayMs: number;
  readonly requests: RecordedRequest[] = [];
  readonly #current: Namespaces = new Map();
  readonly #visible: Namespaces = new Map();
  readonly #pending: { at: number; op: Operation }[] = [];
  #faults: ActiveFault[] = [];
  readonly #server: http.Server;

  constructor(options: PineconeServerOptions) {
    this.name = options.name ?? `index-${randomBytes(3).toString('hex')}`;
    this.dimension = options.dimension;
    this.apiKey = options.apiKey ?? 'test';
    this.visibilityDelayMs = options.visibilityDelayMs ?? 0;
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => resolve());
    });
    this.host = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Answers the next `count` matching requests with `fault`. */
  failNext(count: number, fault: Fault): void {
    this.#faults.push({ fault, remaining: count });
  }

  /** Answers a fraction `rate` (0..1) of matching requests with `fault`, until `clearFaults`. */
  failRate(rate: number, fault: Fault): void {
    this.#faults.push({ fault, rate });
  }

  clearFaults(): void {
    this.#faults = [];
  }

  /** The authoritative records of a namespace (what Pinecone holds, visible or not yet). */
  records(namespace: string): StoredRecord[] {
    return [...(this.#current.get(namespace)?.values() ?? [])].sort((a, b) => compareBytes(a.id, b.id));
  }

  /** Every authoritative namespace. */
  namespaces(): string[] {
    return [...this.#current.keys()].sort(compareBytes);
  }

  /** Makes every acknowledged write visible now. */
  settle(): void {
    this.#advance(Number.POSITIVE_INFINITY);
  }

  #advance(now = Date.now()): void {
    while (this.#pending.length > 0 && (this.#pending[0] as { at: number }).at + this.visibilityDelayMs <= now) {
      apply(this.#visible, (this.#pending.shift() as { op: Operation }).op);
    }
  }

  #write(op: Operation): number {
    const touched = apply(this.#current, op);
    this.#pending.push({ at: Date.now(), op });
    this.#advance();
    return touched;
  }

  #pickFault(route: string): Fault | undefined {
    for (const active of this.#faults) {
      if (active.fault.routes && !active.fault.routes.includes(route)) continue;
      if (active.remaining !== undefined) {
        if (active.remaining <= 0) continue;
        active.remaining--;
        return active.fault;
      }
      if (active.rate !== undefined && Math.random() < active.rate) return active.fault;
    }
    return undefined;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      route,
      status: 200,
      bytes: raw.length,
      faulted: false,
      at: Date.now(),
      ...(typeof req.headers['x-pinecone-api-version'] === 'string'
        ? { apiVersion: req.headers['x-pinecone-api-version'] }
        : {}),
    };
    this.requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.headers['api-key'] !== this.apiKey) {
        throw new HttpError(401, GRPC.unauthenticated, 'Invalid API Key');
      }
      const handler = ROUTES[`${record.method} ${route}`];
      if (!handler) throw new HttpError(404, GRPC.notFound, `no route ${record.method} ${route}`);
      // Parsed before faults are injected, so a faulted request is recorded with its namespace too.
      let body: Record<string, unknown> = {};
      if (record.method === 'POST') {
        try {
          const parsed: unknown = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : {};
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
          body = parsed as Record<string, unknown>;
        } catch {
          throw bad('the request body is not a JSON object');
        }
      }
      const namespace = record.method === 'POST' ? body.namespace : url.searchParams.get('namespace');
      if (typeof namespace === 'string') record.namespace = namespace === '' ? '__default__' : namespace;
      const fault = this.#pickFault(route);
      if (fault) {
        record.faulted = true;
        if (fault.delayMs) await sleep(fault.delayMs);
        if (fault.status !== undefined) {
          const code =
            fault.status === 429
              ? GRPC.resourceExhausted
              : fault.status === 401
                ? GRPC.unauthenticated
                : fault.status >= 500
                  ? GRPC.unavailable
                  : GRPC.invalidArgument;
          const message =
            fault.status === 429
              ? 'Request was rate limited. Your request rate exceeds the limit of this namespace.'
              : `injected ${fault.status}`;
          send(
            fault.status,
            { code, message, details: [] },
            fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {},
          );
          return;
        }
      }
      if (record.method === 'POST' && route === '/vectors/upsert' && raw.length > LIMITS.maxUpsertBytes) {
        throw bad(`Request size ${(raw.length / 1024 / 1024).toFixed(1)}MB exceeds the maximum supported size of 2MB`);
      }
      send(200, this[handler](body, url.searchParams, record));
    } catch (error) {
      if (error instanceof HttpError) {
        send(error.status, { code: error.code, message: error.message, details: [] });
      } else {
        send(500, {
          code: GRPC.internal,
          message: error instanceof Error ? error.message : String(error),
          details: [],
        });
      }
    }
  }

  // ---- routes ----

  upsert(body: Record<string, unknown>, _q: URLSearchParams, record: RecordedRequest): unknown {
    const namespace = checkNamespace(body.namespace);
    record.namespace = namespace;
    const vectors = body.vectors;
    if (!Array.isArray(vectors) || vectors.length === 0) throw bad('vectors must be a non-empty list');
    record.vectors = vectors.length;
    if (vectors.length > LIMITS.maxUpsertVectors) {
      throw bad(`Batch size exceeds ${LIMITS.maxUpsertVectors}: ${vectors.length} vectors in one upsert`);
    }
    const records = vectors.map((v: unknown, i) => {
      if (v === null || typeof v !== 'object') throw bad(`vectors[${i}] must be an object`);
      const { id, values, metadata } = v as { id?: unknown; values?: unknown; metadata?: unknown };
      if (typeof id !== 'string' || id.length === 0) throw bad(`vectors[${i}].id must be a non-empty string`);
      if (Buffer.byteLength(id, 'utf8') > LIMITS.maxIdBytes) {
        throw bad(`Vector ID must be at most ${LIMITS.maxIdBytes} bytes: ${id.slice(0, 40)}`);
      }
      const checked = checkMetadata(metadata, `vector ${id}`);
      const size = checked === undefined ? 0 : Buffer.byteLength(JSON.stringify(checked), 'utf8');
      if (size > LIMITS.maxMetadataBytes) {
        throw bad(
          `Metadata size is ${size} bytes, which exceeds the limit of ${LIMITS.maxMetadataBytes} bytes per vector`,
        );
      }
      return { id, values: checkValues(values, this.dimension, `vector ${id}`), metadata: checked };
    });
    this.#write({ kind: 'upsert', namespace, records });
    return { upsertedCount: records.length };
  }

  fetch(_body: Record<string, unknown>, query: URLSearchParams, record: RecordedRequest): unknown {
    const namespace = checkNamespace(query.get('namespace') ?? undefined);
    record.namespace = namespace;
    const ids = query.getAll('ids');
    record.ids = ids.length;
    if (ids.length === 0) throw bad('ids must contain at least one id');
    if (ids.length > LIMITS.maxIdsPerRequest) throw bad(`Number of ids exceeds ${LIMITS.maxIdsPerRequest}`);
    this.#advance();
    const ns = this.#visible.get(namespace);
    const vectors: Record<string, unknown> = {};
    for (const id of ids) {
      const r = ns?.get(id);
      if (r) vectors[id] = { id: r.id, values: r.values, ...(r.metadata ? { metadata: r.metadata } : {}) };
    }
    return { vectors, namespace, usage: { readUnits: 1 } };
  }

  delete(body: Record<string, unknown>, _q: URLSearchParams, record: RecordedRequest): unknown {
    const namespace = checkNamespace(body.namespace);
    record.namespace = namespace;
    const given = [body.ids !== undefined, body.deleteAll === true, body.filter !== undefined].filter(Boolean).length;
    if (given !== 1) throw bad('exactly one of ids, deleteAll and filter must be given');
    if (body.ids !== undefined) {
      const ids = body.ids;
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string')) {
        throw bad('ids must be a non-empty list of strings');
      }
      record.ids = ids.length;
      if (ids.length > LIMITS.maxIdsPerRequest) throw bad(`Number of ids exceeds ${LIMITS.maxIdsPerRequest}`);
      this.#write({ kind: 'delete-ids', namespace, ids: ids as string[] });
    } else if (body.deleteAll === true) {
      this.#write({ kind: 'delete-all', namespace });
    } else {
      this.#write({ kind: 'delete-filter', namespace, filter: checkFilter(body.filter) });
    }
    return {};
  }

  update(body: Record<string, unknown>, _q: URLSearchParams, record: RecordedRequest): unknown {
    const namespace = checkNamespace(body.namespace);
    record.namespace = namespace;
    const setMetadata = checkMetadata(body.setMetadata, 'setMetadata');
    if (body.id !== undefined && body.filter !== undefined) throw bad('give either id or filter, not both');
    if (body.filter !== undefined) {
      if (!setMetadata) throw bad('an update by filter needs setMetadata');
      const matched = this.#write({ kind: 'update-filter', namespace, filter: checkFilter(body.filter), setMetadata });
      return { matchedRecords: matched };
    }
    if (typeof body.id !== 'string' || body.id.length === 0) throw bad('id is a required field');
    const values =
      body.values === undefined ? undefined : checkValues(body.values, this.dimension, `vector ${body.id}`);
    if (setMetadata) {
      const existing = this.#current.get(namespace)?.get(body.id)?.metadata;
      const size = Buffer.byteLength(JSON.stringify({ ...existing, ...setMetadata }), 'utf8');
      if (size > LIMITS.maxMetadataBytes) {
        throw bad(
          `Metadata size is ${size} bytes, which exceeds the limit of ${LIMITS.maxMetadataBytes} bytes per vector`,
        );
      }
    }
    this.#write({
      kind: 'update-id',
      namespace,
      id: body.id,
      ...(values ? { values } : {}),
      ...(setMetadata ? { setMetadata } : {}),
    });
    return {};
  }

  query(body: Record<string, unknown>, _q: URLSearchParams, record: RecordedRequest): unknown {
    const namespace = checkNamespace(body.namespace);
    record.namespace = namespace;
    const topK = body.topK;
    if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1 || topK > LIMITS.maxTopK) {
      throw bad(`topK must be an integer in [1, ${LIMITS.maxTopK}]`);
    }
    const includeValues = body.includeValues === true;
    const includeMetadata = body.includeMetadata === true;
    if ((includeValues || includeMetadata) && topK > LIMITS.maxTopKWithData) {
      throw bad(`topK must be at most ${LIMITS.maxTopKWithData} when including values or metadata`);
    }
    const filter = body.filter === undefined ? undefined : checkFilter(body.filter);
    this.#advance();
    const ns = this.#visible.get(namespace);
    let vector: number[];
    if (body.vector !== undefined) vector = checkValues(body.vector, this.dimension, 'query vector');
    else if (typeof body.id === 'string') {
      const r = ns?.get(body.id);
      if (!r) return { matches: [], namespace, usage: { readUnits: 1 } };
      vector = r.values;
    } else throw bad('a query needs a vector or an id');
    const matches = [...(ns?.values() ?? [])]
      .filter((r) => filter === undefined || matchesFilter(r.metadata, filter))
      .map((r) => ({ r, score: cosine(vector, r.values) }))
      .sort((a, b) => b.score - a.score || compareBytes(a.r.id, b.r.id))
      .slice(0, topK)
      .map(({ r, score }) => ({
        id: r.id,
        score,
        values: includeValues ? r.values : [],
        ...(includeMetadata && r.metadata ? { metadata: r.metadata } : {}),
      }));
    return { matches, namespace, usage: { readUnits: 5 } };
  }

  list(_body: Record<string, unknown>, query: URLSearchParams, record: RecordedRequest): unknown {
    const namespace = checkNamespace(query.get('namespace') ?? undefined);
    record.namespace = namespace;
    const prefix = query.get('prefix') ?? '';
    const limitRaw = query.get('limit');
    const limit = limitRaw === null ? 100 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIMITS.maxListLimit) {
      throw bad(`limit must be an integer in [1, ${LIMITS.maxListLimit}]`);
    }
    let after: string | undefined;
    const token = query.get('paginationToken');
    if (token) {
      try {
        const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
          after?: unknown;
          prefix?: unknown;
        };
        if (typeof parsed.after !== 'string' || parsed.prefix !== prefix) throw new Error('mismatch');
        after = parsed.after;
      } catch {
        throw bad('invalid pagination token');
      }
    }
    this.#advance();
    const ids = [...(this.#visible.get(namespace)?.keys() ?? [])]
      .filter((id) => id.startsWith(prefix) && (after === undefined || compareBytes(id, after) > 0))
      .sort(compareBytes);
    const page = ids.slice(0, limit);
    const more = ids.length > limit;
    return {
      vectors: page.map((id) => ({ id })),
      ...(more
        ? {
            pagination: {
              next: Buffer.from(JSON.stringify({ after: page[page.length - 1], prefix })).toString('base64url'),
            },
          }
        : {}),
      namespace,
      usage: { readUnits: 1 },
    };
  }

  stats(_body: Record<string, unknown>, _q: URLSearchParams, _record: RecordedRequest): unknown {
    this.#advance();
    const namespaces: Record<string, { vectorCount: number }> = {};
    let total = 0;
    for (const [name, ns] of this.#visible) {
      if (ns.size === 0) continue;
      namespaces[name] = { vectorCount: ns.size };
      total += ns.size;
    }
    return {
      namespaces,
      dimension: this.dimension,
      indexFullness: 0,
      totalVectorCount: total,
      metric: 'cosine',
      vectorType: 'dense',
    };
  }

  /** Largest request seen per route: `{bytes, vectors, ids}` (answered or not). */
  largest(route: string): { bytes: number; vectors: number; ids: number } {
    const seen = this.requests.filter((r) => r.route === route);
    return {
      bytes: Math.max(0, ...seen.map((r) => r.bytes)),
      vectors: Math.max(0, ...seen.map((r) => r.vectors ?? 0)),
      ids: Math.max(0, ...seen.map((r) => r.ids ?? 0)),
    };
  }
}

const ROUTES: Record<string, 'upsert' | 'fetch' | 'delete' | 'update' | 'query' | 'list' | 'stats'> = {
  'POST /vectors/upsert': 'upsert',
  'GET /vectors/fetch': 'fetch',
  'POST /vectors/delete': 'delete',
  'POST /vectors/update': 'update',
  'POST /query': 'query',
  'GET /vectors/list': 'list',
  'POST /describe_index_stats': 'stats',
};

/** Starts one index (one host). */
export async function startPineconeServer(options: PineconeServerOptions): Promise<PineconeIndexServer> {
  return new PineconeIndexServer(options).listen(options.port ?? 0);
}

// ---- the control plane (name mode) -------------------------------------------------------------

/**
 * `GET /indexes/{name}` (describe) and `POST /indexes` (create, 201; 409 when it exists), with
 * Pinecone's control-plane error shape `{"error": {"code", "message"}, "status"}`. A created
 * index is a `PineconeIndexServer` on a port of its own, ready at once.
 */
export class PineconeControlPlane {
  host = '';
  readonly indexes = new Map<string, PineconeIndexServer>();
  readonly requests: { method: string; path: string; status: number }[] = [];
  readonly #server: http.Server;

  constructor(
    readonly apiKey = 'test',
    readonly visibilityDelayMs = 0,
  ) {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    this.host = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async createIndex(name: string, dimension: number): Promise<PineconeIndexServer> {
    const index = await startPineconeServer({
      name,
      dimension,
      apiKey: this.apiKey,
      visibilityDelayMs: this.visibilityDelayMs,
    });
    this.indexes.set(name, index);
    return index;
  }

  async close(): Promise<void> {
    await Promise.all([...this.indexes.values()].map((i) => i.close()));
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #model(index: PineconeIndexServer): unknown {
    return {
      name: index.name,
      dimension: index.dimension,
      metric: 'cosine',
      host: index.host,
      spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
      status: { ready: true, state: 'Ready' },
      vector_type: 'dense',
      deletion_protection: 'disabled',
    };
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const send = (status: number, body: unknown) => {
      this.requests.push({ method: req.method ?? 'GET', path, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const error = (status: number, code: string, message: string) => send(status, { error: { code, message }, status });
    if (req.headers['api-key'] !== this.apiKey) return error(401, 'UNAUTHENTICATED', 'Invalid API Key');
    const described = /^\/indexes\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && described) {
      const index = this.indexes.get(decodeURIComponent(described[1] ?? ''));
      if (!index) return error(404, 'NOT_FOUND', `Resource ${described[1]} not found`);
      return send(200, this.#model(index));
    }
    if (req.method === 'POST' && path === '/indexes') {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as {
        name?: string;
        dimension?: number;
        metric?: string;
      };
      if (!body.name || !body.dimension) return error(400, 'INVALID_ARGUMENT', 'name and dimension are required');
      if (body.metric && body.metric !== 'cosine') {
        return error(400, 'INVALID_ARGUMENT', 'this local control plane creates cosine indexes only');
      }
      if (this.indexes.has(body.name)) return error(409, 'ALREADY_EXISTS', `Resource ${body.name} already exists`);
      return send(201, this.#model(await this.createIndex(body.name, body.dimension)));
    }
    return error(404, 'NOT_FOUND', `no route ${req.method} ${path}`);
  }
}

export async function startPineconeControlPlane(
  options: { apiKey?: string; visibilityDelayMs?: number } = {},
): Promise<PineconeControlPlane> {
  return new PineconeControlPlane(options.apiKey, options.visibilityDelayMs).listen();
}
