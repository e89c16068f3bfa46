import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PoisonMessageError } from '../errors.ts';
import { decodeOutbox, OutboxPoison, type OutboxMessage } from './decode-outbox.ts';

const limits = { maxBodyBytes: 1000, maxMetadataBytes: 200 };

const upsertPayload = {
  op: 'upsert',
  tenant_id: 't1',
  document_id: 'doc-1',
  version: 3,
  acl_version: 2,
  acl: ['bob', 'alice', 'bob'],
  title: 'Hello',
  body: 'Some body text.',
  language: 'en',
  status: 'active',
  metadata: { category: 'news', tags: ['a', 'b'] },
  model: { name: 'hashing-384', version: 1 },
  created_at: '2025-01-02T03:04:05.123456+00:00',
};

function message(payload: unknown, key: string | null = 't1:doc-1', headers?: OutboxMessage['headers']): OutboxMessage {
  const value = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(JSON.stringify(payload));
  return { key: key === null ? null : Buffer.from(key), value, headers };
}

function assertPoison(fn: () => unknown, reason: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof PoisonMessageError, `expected PoisonMessageError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('decodeOutbox: valid messages', () => {
  it('decodes an upsert and normalizes its ACL', () => {
    const { key, event, outboxId } = decodeOutbox(
      message(upsertPayload, 't1:doc-1', { outbox_id: Buffer.from('42') }),
      limits,
    );
    assert.equal(key, 't1:doc-1');
    assert.equal(outboxId, 42);
    assert.equal(event.op, 'upsert');
    assert.deepEqual(event.op === 'upsert' && event.acl, ['alice', 'bob']);
    assert.deepEqual(event.op === 'upsert' && event.model, { name: 'hashing-384', version: 1 });
  });

  it('accepts a payload sent as a JSON string (payload not expanded) and the {schema, payload} envelope', () => {
    const expected = decodeOutbox(message(upsertPayload), limits).event;
    assert.deepEqual(decodeOutbox(message(JSON.stringify(JSON.stringify(upsertPayload))), limits).event, expected);
    assert.deepEqual(
      decodeOutbox(message({ schema: { type: 'string' }, payload: JSON.stringify(upsertPayload) }), limits).event,
      expected,
    );
    assert.deepEqual(decodeOutbox(message({ schema: null, payload: upsertPayload }), limits).event, expected);
  });

  it('treats null title, body, language and metadata as absent', () => {
    const { event } = decodeOutbox(
      message({ ...upsertPayload, title: null, body: null, language: null, metadata: null }),
      limits,
    );
    assert.equal(event.op, 'upsert');
    if (event.op !== 'upsert') return;
    assert.equal(event.title, null);
    assert.equal(event.body, '');
    assert.deepEqual(event.metadata, {});
  });

  it('folds an upsert of an archived or deleted document into a delete', () => {
    const { event } = decodeOutbox(message({ ...upsertPayload, status: 'archived' }), limits);
    assert.deepEqual(event, {
      op: 'delete',
      tenant_id: 't1',
      document_id: 'doc-1',
      version: 3,
      acl_version: 2,
      created_at: upsertPayload.created_at,
      reason: 'archived',
    });
  });

  it('decodes delete and acl events; a delete without reason or ACL version still applies', () => {
    const del = decodeOutbox(
      message({ op: 'delete', tenant_id: 't1', document_id: 'doc-1', version: 4, created_at: 'x' }),
      limits,
    );
    assert.deepEqual(del.event, {
      op: 'delete',
      tenant_id: 't1',
      document_id: 'doc-1',
      version: 4,
      acl_version: 0,
      reason: 'deleted',
      created_at: 'x',
    });
    const acl = decodeOutbox(
      message({
        op: 'acl',
        tenant_id: 't1',
        document_id: 'doc-1',
        version: 4,
        acl_version: 9,
        acl: ['z', 'a'],
        created_at: 'x',
      }),
      limits,
    );
    assert.deepEqual(acl.event.op === 'acl' && acl.event.acl, ['a', 'z']);
  });

  it('takes created_at from the router header when the payload lacks it, and accepts digit-string versions', () => {
    const { created_at: _, ...rest } = upsertPayload;
    const { event } = decodeOutbox(
      message({ ...rest, version: '3' }, 't1:doc-1', { created_at: '"2025-01-01T00:00:00Z"' }),
      limits,
    );
    assert.equal(event.created_at, '2025-01-01T00:00:00Z');
    assert.equal(event.version, 3);
  });

  it('accepts a JSON-quoted key (JsonConverter on the key)', () => {
    assert.equal(decodeOutbox(message(upsertPayload, '"t1:doc-1"'), limits).key, 't1:doc-1');
  });

  it('never lets restricted fields through', () => {
    const { event } = decodeOutbox(message({ ...upsertPayload, restricted: { ssn: '123' } }), limits);
    assert.equal('restricted' in event, false);
  });
});

describe('decodeOutbox: poison messages', () => {
  it('empty_value for a null or empty value', () => {
    assertPoison(() => decodeOutbox({ key: 't1:doc-1', value: null }, limits), OutboxPoison.emptyValue);
    assertPoison(() => decodeOutbox({ key: 't1:doc-1', value: Buffer.alloc(0) }, limits), OutboxPoison.emptyValue);
  });

  it('invalid_utf8 for bytes that are not UTF-8', () => {
    const value = Buffer.concat([Buffer.from('{"op":"upsert","body":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    assertPoison(() => decodeOutbox({ key: 't1:doc-1', value }, limits), OutboxPoison.invalidUtf8);
  });

  it('nul_byte for a raw NUL and for an escaped \\u0000 in any field', () => {
    assertPoison(() => decodeOutbox(message('{"op":"upsert"\u0000}'), limits), OutboxPoison.nulByte);
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, body: 'a\u0000b' }), limits),
      OutboxPoison.nulByte,
      /body/,
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, metadata: { tags: ['ok', 'x\u0000'] } }), limits),
      OutboxPoison.nulByte,
      /metadata\.tags\[1\]/,
    );
  });

  it('invalid_json for text that is not a JSON object', () => {
    for (const text of ['not json', '[1,2]', '42', '"just a string"', 'null']) {
      assertPoison(() => decodeOutbox(message(text), limits), OutboxPoison.invalidJson, undefined);
    }
  });

  it('unknown_operation for an op outside upsert/delete/acl; missing_field when op is absent', () => {
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, op: 'merge' }), limits),
      OutboxPoison.unknownOperation,
      /merge/,
    );
    assertPoison(() => decodeOutbox(message({ ...upsertPayload, op: 7 }), limits), OutboxPoison.unknownOperation);
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, op: 'toString' }), limits),
      OutboxPoison.unknownOperation,
    );
    const { op: _, ...noOp } = upsertPayload;
    assertPoison(() => decodeOutbox(message(noOp), limits), OutboxPoison.missingField, /\bop\b/);
  });

  it('missing_field names the field, nested fields by path', () => {
    for (const field of ['tenant_id', 'document_id', 'version', 'acl_version', 'acl', 'model', 'created_at'] as const) {
      const payload: Record<string, unknown> = { ...upsertPayload };
      delete payload[field];
      assertPoison(
        () => decodeOutbox(message(payload), limits),
        OutboxPoison.missingField,
        new RegExp(`missing field ${field}$`),
      );
    }
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, model: { version: 1 } }), limits),
      OutboxPoison.missingField,
      /model\.name/,
    );
  });

  it('invalid_field for a present field of the wrong type or range', () => {
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, version: 'three' }), limits),
      OutboxPoison.invalidField,
      /version/,
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, version: -1 }), limits),
      OutboxPoison.invalidField,
      /version/,
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, acl: ['ok', ''] }), limits),
      OutboxPoison.invalidField,
      /acl\.1/,
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, status: 'gone' }), limits),
      OutboxPoison.invalidField,
      /status/,
    );
  });

  it('body_too_large and metadata_too_large against the configured limits (bytes, not characters)', () => {
    assert.doesNotThrow(() => decodeOutbox(message({ ...upsertPayload, body: 'x'.repeat(1000) }), limits));
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, body: 'é'.repeat(501) }), limits),
      OutboxPoison.bodyTooLarge,
      /1002 bytes/,
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, metadata: { tags: ['x'.repeat(200)] } }), limits),
      OutboxPoison.metadataTooLarge,
    );
    const huge = { key: 't1:doc-1', value: Buffer.alloc(20_000_000, 0x20) };
    assertPoison(() => decodeOutbox(huge, limits), OutboxPoison.bodyTooLarge);
  });

  it('key_mismatch when the Kafka key is not tenant:document of the payload', () => {
    assertPoison(() => decodeOutbox(message(upsertPayload, 't1:doc-2'), limits), OutboxPoison.keyMismatch, /t1:doc-2/);
    assertPoison(() => decodeOutbox(message(upsertPayload, null), limits), OutboxPoison.keyMismatch);
  });

  it('invalid_key when a tenant id contains ":" or an id a control character; other characters pass', () => {
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, tenant_id: 'a:b' }, 'a:b:doc-1'), limits),
      OutboxPoison.invalidKey,
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, document_id: 'x\ty' }, 't1:x\ty'), limits),
      OutboxPoison.invalidKey,
    );
    assert.equal(
      decodeOutbox(message({ ...upsertPayload, document_id: 'My File: v2#3' }, 't1:My File: v2#3'), limits).key,
      't1:My File: v2#3',
    );
    assertPoison(
      () => decodeOutbox(message({ ...upsertPayload, document_id: '' }, 't1:'), limits),
      OutboxPoison.invalidKey,
    );
  });

  it('any bytes either decode or fail as a poison message, never as a bug', () => {
    const anyBytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
    const jsonish = fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
    const mutated = fc
      .record(
        Object.fromEntries(
          Object.entries(upsertPayload).map(([k, v]) => [k, fc.oneof(fc.constant(v), fc.jsonValue())]),
        ),
      )
      .map((p) => Buffer.from(JSON.stringify(p)));
    fc.assert(
      fc.property(fc.oneof(anyBytes, jsonish, mutated), (value) => {
        try {
          decodeOutbox({ key: 't1:doc-1', value }, limits);
        } catch (error) {
          assert.ok(error instanceof PoisonMessageError, String(error));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
