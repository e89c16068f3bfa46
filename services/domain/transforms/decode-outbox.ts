/**
 * Decodes one outbox message (as Debezium's outbox router writes it to `vecsync.outbox.<lane>`)
 * into a validated OutboxEvent. Pure: no Kafka, no I/O. Every way a message can be bad ends in a
 * PoisonMessageError whose `reason` is one of `OutboxPoison`, so the DLQ can be grouped by it.
 */
import { z } from 'zod';
import { PoisonMessageError } from '../errors.ts';
import {
  DeleteReason,
  DocumentStatus,
  InvalidKeyError,
  Operation,
  documentKey,
  type DocumentKey,
  type JsonValue,
  type OutboxEvent,
  type UpsertEvent,
} from '../types.ts';
import { normalizeAcl } from './acl.ts';

/** Machine-readable reasons of a poison outbox message (the DLQ `reason` header). */
export const OutboxPoison = {
  emptyValue: 'empty_value',
  invalidUtf8: 'invalid_utf8',
  nulByte: 'nul_byte',
  invalidJson: 'invalid_json',
  unknownOperation: 'unknown_operation',
  missingField: 'missing_field',
  invalidField: 'invalid_field',
  invalidKey: 'invalid_key',
  keyMismatch: 'key_mismatch',
  bodyTooLarge: 'body_too_large',
  metadataTooLarge: 'metadata_too_large',
} as const;
export type OutboxPoison = (typeof OutboxPoison)[keyof typeof OutboxPoison];

/** Size limits, from `config.limits`. */
export interface OutboxLimits {
  /** Largest body, in UTF-8 bytes. */
  maxBodyBytes: number;
  /** Largest allowlisted metadata, in bytes of its JSON text. */
  maxMetadataBytes: number;
}

/** Kafka headers as kafkajs delivers them. */
export type MessageHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** The parts of a Kafka message the decoder looks at (a kafkajs `KafkaMessage` fits). */
export interface OutboxMessage {
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: MessageHeaders | undefined;
}

export interface DecodedOutbox {
  key: DocumentKey;
  event: OutboxEvent;
  /** `vector_sync_outbox.id` from the router's `outbox_id` header, for status write-back. */
  outboxId: number | null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function poison(reason: OutboxPoison, message: string, cause?: unknown): PoisonMessageError {
  return new PoisonMessageError(reason, message, cause === undefined ? undefined : { cause });
}

/** Decodes and validates one outbox message. Throws PoisonMessageError for any bad input. */
export function decodeOutbox(message: OutboxMessage, limits: OutboxLimits): DecodedOutbox {
  const text = decodeText(message.value, limits);
  const payload = parsePayload(text);
  const event = validateEvent(payload, header(message.headers, 'created_at'));
  checkLimits(event, limits);
  const key = checkKey(message.key, event);
  return { key, event, outboxId: parseOutboxId(header(message.headers, 'outbox_id')) };
}

// --- bytes -> text -----------------------------------------------------------------------------

/**
 * A generous bound on the whole value, checked before decoding so an absurd message is refused
 * without parsing it: JSON escaping can grow text up to 6x (`\u0000` style) and a payload sent as
 * a JSON string is escaped twice; the precise body and metadata limits are checked after parsing.
 */
function maxValueBytes(limits: OutboxLimits): number {
  return 12 * (limits.maxBodyBytes + limits.maxMetadataBytes) + 64 * 1024;
}

function decodeText(value: Buffer | null, limits: OutboxLimits): string {
  if (value === null || value.length === 0) throw poison(OutboxPoison.emptyValue, 'message has no value');
  const cap = maxValueBytes(limits);
  if (value.length > cap) {
    throw poison(OutboxPoison.bodyTooLarge, `value of ${value.length} bytes exceeds ${cap} bytes`);
  }
  let text: string;
  try {
    text = utf8.decode(value);
  } catch (error) {
    throw poison(OutboxPoison.invalidUtf8, 'value is not valid UTF-8', error);
  }
  // PostgreSQL text cannot hold NUL, and a NUL that reached Kafka would break the sink's SQL.
  if (text.includes('\u0000')) throw poison(OutboxPoison.nulByte, 'value contains a NUL byte');
  return text;
}

// --- text -> payload object ---------------------------------------------------------------------

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw poison(OutboxPoison.invalidJson, `value is not JSON: ${(error as Error).message}`, error);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Accepts the shapes Debezium can produce for the same payload: the object itself
 * (`table.expand.json.payload=true`), a JSON string holding it (payload not expanded), and the
 * JsonConverter envelope `{schema, payload}` (schemas enabled).
 */
function parsePayload(text: string): Record<string, unknown> {
  let value = parseJson(text);
  if (typeof value === 'string') value = parseJson(value);
  if (isObject(value) && !('op' in value) && 'schema' in value && 'payload' in value) {
    value = typeof value.payload === 'string' ? parseJson(value.payload) : value.payload;
  }
  if (!isObject(value)) throw poison(OutboxPoison.invalidJson, 'value is not a JSON object');
  const nulAt = findNul(value, '');
  if (nulAt !== undefined) throw poison(OutboxPoison.nulByte, `field ${nulAt} contains a NUL character`);
  return value;
}

/** Path of the first string (or key) holding U+0000 after JSON unescaping, if any. */
function findNul(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || '<value>' : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNul(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      if (k.includes('\u0000')) return at;
      const found = findNul(v, at);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

// --- payload -> event ---------------------------------------------------------------------------

// bigint columns arrive as JSON numbers; a digit string is accepted too in case a converter
// renders int8 as text. Beyond 2^53 a version would lose precision, so it is refused.
const counter = z.union([
  z.int().nonnegative(),
  z
    .string()
    .regex(/^\d{1,15}$/)
    .transform(Number),
]);
const acl = z
  .array(z.string().min(1))
  .nullable()
  .transform((principals) => normalizeAcl(principals ?? []));
const nullableText = z
  .string()
  .nullable()
  .optional()
  .transform((v) => v ?? null);

const base = {
  tenant_id: z.string(),
  document_id: z.string(),
  version: counter,
  acl_version: counter,
  created_at: z.string().min(1),
};

const upsertSchema = z.object({
  ...base,
  op: z.literal(Operation.upsert),
  acl,
  title: nullableText,
  body: z
    .string()
    .nullable()
    .optional()
    .transform((v) => v ?? ''),
  language: nullableText,
  status: z.enum(DocumentStatus).default('active'),
  metadata: z
    .record(z.string(), z.json())
    .nullable()
    .optional()
    .transform((v) => (v ?? {}) as { [key: string]: JsonValue }),
  model: z.object({ name: z.string().min(1), version: z.int().positive() }),
  /** `vecsync.document_importance` when above 0 (absent for ordinary documents). */
  importance: z.int().min(0).optional(),
});

const deleteSchema = z.object({
  ...base,
  op: z.literal(Operation.delete),
  // A delete must not be dead-lettered over its ACL version or reason: that would leave the
  // document searchable. Neither decides anything (see version-guard.ts), so both have defaults.
  acl_version: counter.default(0),
  reason: z.enum(DeleteReason).default(DeleteReason.deleted),
});

const aclSchema = z.object({ ...base, op: z.literal(Operation.acl), acl });

const schemas = { upsert: upsertSchema, delete: deleteSchema, acl: aclSchema } as const;

function validateEvent(payload: Record<string, unknown>, createdAtHeader: string | undefined): OutboxEvent {
  const op = payload.op;
  if (op === undefined || op === null) throw poison(OutboxPoison.missingField, 'missing field op');
  if (typeof op !== 'string' || !Object.hasOwn(schemas, op)) {
    throw poison(OutboxPoison.unknownOperation, `unknown operation ${JSON.stringify(op)}`);
  }
  // The router also copies created_at into a header; older payloads may only have that.
  const input =
    payload.created_at === undefined && createdAtHeader ? { ...payload, created_at: createdAtHeader } : payload;
  const result = schemas[op as Operation].safeParse(input);
  if (!result.success) throw fieldError(input, result.error.issues[0]);
  const event = result.data;
  // The triggers emit a delete for archived/deleted documents; an upsert carrying such a status is
  // folded into that delete so both trigger styles make the document unsearchable.
  if (event.op === Operation.upsert && event.status !== DocumentStatus.active) {
    const { tenant_id, document_id, version, acl_version, created_at, status } = event;
    return { op: Operation.delete, tenant_id, document_id, version, acl_version, created_at, reason: status };
  }
  return event as OutboxEvent;
}

function fieldError(input: Record<string, unknown>, issue: z.core.$ZodIssue | undefined): PoisonMessageError {
  const path = issue?.path ?? [];
  const field = path.map(String).join('.') || '<value>';
  let value: unknown = input;
  for (const segment of path) {
    value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[segment] : undefined;
  }
  if (value === undefined) return poison(OutboxPoison.missingField, `missing field ${field}`);
  return poison(OutboxPoison.invalidField, `invalid field ${field}: ${issue?.message ?? 'invalid'}`);
}

// --- limits and key -------------------------------------------------------------------------

/**
 * An upsert whose inline body or metadata is over a limit. It carries the decoded event, so the
 * embedder can still take the document out of search (fail closed) before it is dead-lettered.
 */
export class OversizedUpsertError extends PoisonMessageError {
  constructor(
    reason: OutboxPoison,
    message: string,
    readonly event: UpsertEvent,
  ) {
    super(reason, message);
  }
}

function checkLimits(event: OutboxEvent, limits: OutboxLimits): void {
  if (event.op !== Operation.upsert) return;
  const bodyBytes = Buffer.byteLength(event.body, 'utf8');
  if (bodyBytes > limits.maxBodyBytes) {
    throw new OversizedUpsertError(
      OutboxPoison.bodyTooLarge,
      `body of ${bodyBytes} bytes exceeds ${limits.maxBodyBytes} bytes`,
      event,
    );
  }
  const metadataBytes = Buffer.byteLength(JSON.stringify(event.metadata), 'utf8');
  if (metadataBytes > limits.maxMetadataBytes) {
    throw new OversizedUpsertError(
      OutboxPoison.metadataTooLarge,
      `metadata of ${metadataBytes} bytes exceeds ${limits.maxMetadataBytes} bytes`,
      event,
    );
  }
}

function checkKey(rawKey: Buffer | string | null, event: OutboxEvent): DocumentKey {
  let expected: DocumentKey;
  try {
    expected = documentKey(event.tenant_id, event.document_id);
  } catch (error) {
    if (error instanceof InvalidKeyError) throw poison(OutboxPoison.invalidKey, error.message, error);
    throw error;
  }
  const key = keyText(rawKey);
  if (key !== expected) {
    throw poison(
      OutboxPoison.keyMismatch,
      `Kafka key ${JSON.stringify(key)} is not the payload's ${JSON.stringify(expected)}`,
    );
  }
  return expected;
}

/** The key as text; a JSON-quoted key (JsonConverter instead of StringConverter) is unquoted. */
function keyText(rawKey: Buffer | string | null): string | null {
  if (rawKey === null) return null;
  const text = typeof rawKey === 'string' ? rawKey : rawKey.toString('utf8');
  if (text.startsWith('"')) {
    try {
      const unquoted: unknown = JSON.parse(text);
      if (typeof unquoted === 'string') return unquoted;
    } catch {
      // not JSON: compared as it is
    }
  }
  return text;
}

// --- headers ----------------------------------------------------------------------------------

function header(headers: MessageHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  const first = Array.isArray(raw) ? raw[0] : raw;
  if (first === undefined) return undefined;
  const text = typeof first === 'string' ? first : first.toString('utf8');
  // Header converters may JSON-quote string values.
  return text.startsWith('"') && text.endsWith('"') && text.length >= 2 ? text.slice(1, -1) : text;
}

function parseOutboxId(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,15}$/.test(text)) return null;
  return Number(text);
}
