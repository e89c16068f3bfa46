/**
 * The state topic's side: `vecsync.state.documents` read from the beginning to its end as of the
 * start (services/kafka `readCompactedToEnd`), the latest state per key kept in a `KeyTable`
 * (strings are never retained), then folded into per-tenant, per-bucket checksums of the searchable
 * keys. Phase B looks the keys of the differing buckets up in the same table (`StateDetail`).
 */
import type { Kafka } from '../../adapters/kafka/client.ts';
import { readCompactedToEnd } from '../../adapters/kafka/compacted.ts';
import { DigestBuckets, md5Hex, stateDigest, ZERO_DIGEST, type Digest64 } from '../../domain/transforms/drift.ts';
import { KeyTable } from './key-table.ts';

/** What the reconciler reads from a state-topic value (see core/types.ts `DocumentState`). */
export interface TopicState {
  version: number;
  acl_version: number;
  searchable: boolean;
}

/** Decodes a state value; undefined when it is not a usable state (counted as invalid). */
export function parseStateValue(value: Buffer | null): TopicState | null | undefined {
  // A Kafka tombstone removes the key: nothing searchable.
  if (value === null) return null;
  try {
    const v = JSON.parse(value.toString('utf8')) as Record<string, unknown>;
    if (typeof v.version !== 'number' || typeof v.acl_version !== 'number') return undefined;
    return { version: v.version, acl_version: v.acl_version, searchable: v.status === 'active' && v.deleted !== true };
  } catch {
    return undefined;
  }
}

/** Splits a `tenant:document` key; undefined when it is not one. */
export function splitKey(key: string): { tenant: string; document: string } | undefined {
  const at = key.indexOf(':');
  if (at <= 0 || at === key.length - 1) return undefined;
  return { tenant: key.slice(0, at), document: key.slice(at + 1) };
}

/** md5(key): the first 32 bits are the bucket prefix (as `bucketOf`), the next 64 the table's key hash. */
function keyHashes(key: string): { prefix: number; hash: Digest64 } {
  const hex = md5Hex(key);
  return {
    prefix: parseInt(hex.slice(0, 8), 16),
    hash: { hi: parseInt(hex.slice(8, 16), 16), lo: parseInt(hex.slice(16, 24), 16) },
  };
}

export interface StateFold {
  table: KeyTable;
  /** Tenants seen, indexed as in the table's entries. */
  tenants: string[];
  messages: number;
  invalid: number;
}

/**
 * Reads the whole topic into a KeyTable. `inScope` filters by tenant before anything is decoded
 * (the topic is shared by every tenant); `expectedKeys` sizes the table (the keys in scope the
 * source knows of), so that it need not grow while the topic is read.
 */
export async function foldStateTopic(
  kafka: Kafka,
  topic: string,
  groupId: string,
  inScope: (tenant: string) => boolean,
  signal?: AbortSignal,
  expectedKeys?: number,
): Promise<StateFold> {
  const table = new KeyTable(expectedKeys);
  const tenants: string[] = [];
  const tenantIndex = new Map<string, number>();
  let invalid = 0;
  const scopeCache = new Map<string, boolean>();
  const read = await readCompactedToEnd(
    kafka,
    topic,
    (message) => {
      const key = message.key?.toString('utf8');
      const parts = key === undefined ? undefined : splitKey(key);
      if (key === undefined || parts === undefined) {
        invalid++;
        return;
      }
      let wanted = scopeCache.get(parts.tenant);
      if (wanted === undefined) {
        wanted = inScope(parts.tenant);
        if (scopeCache.size < 100_000) scopeCache.set(parts.tenant, wanted);
      }
      if (!wanted) return;
      const state = parseStateValue(message.value);
      if (state === undefined) {
        invalid++;
        return;
      }
      let t = tenantIndex.get(parts.tenant);
      if (t === undefined) {
        t = tenants.length;
        tenants.push(parts.tenant);
        tenantIndex.set(parts.tenant, t);
      }
      const { prefix, hash } = keyHashes(key);
      table.put(hash, {
        tenant: t,
        prefix,
        version: state?.version ?? -1,
        aclVersion: state?.acl_version ?? -1,
        searchable: state?.searchable ?? false,
        digest: state?.searchable
          ? stateDigest(parts.tenant, parts.document, state.version, state.acl_version)
          : ZERO_DIGEST,
      });
    },
    { groupId, signal },
  );
  return { table, tenants, messages: read.messages, invalid };
}

/** Per tenant (with its bucket count), the state digests of the searchable keys. */
export function stateBucketSums(fold: StateFold, bucketsOf: (tenant: string) => number): Map<string, DigestBuckets> {
  const byIndex = fold.tenants.map((tenant) => new DigestBuckets(bucketsOf(tenant)));
  for (const entry of fold.table.entries()) {
    if (!entry.searchable) continue;
    const sums = byIndex[entry.tenant]!;
    sums.add(entry.prefix % sums.buckets, entry.digest);
  }
  return new Map(fold.tenants.map((tenant, i) => [tenant, byIndex[i]!]));
}

const hashId = (hash: Digest64) => `${hash.hi}.${hash.lo}`;

/**
 * The state topic's side of phase B, answered from the key table of phase A: the latest state of
 * every key a source row names is looked up by the key's hash, so the topic is not read again for
 * it. The table holds no strings, though, so a searchable key of a differing bucket that no
 * source row names (a key the source never had, or lost without a tombstone) is known only by its
 * hash; `unknownKeys` reads the topic again for those, and only when there are any.
 */
export class StateDetail {
  readonly #fold: StateFold;
  /** Hashes of the searchable keys of the differing buckets that no source row has named yet. */
  readonly #unmatched = new Set<string>();

  constructor(fold: StateFold, wanted: ReadonlyMap<string, { buckets: number; ids: ReadonlySet<number> }>) {
    this.#fold = fold;
    if (wanted.size === 0) return;
    const byIndex = fold.tenants.map((tenant) => wanted.get(tenant));
    for (const [hash, entry] of fold.table.hashedEntries()) {
      const want = byIndex[entry.tenant];
      if (entry.searchable && want?.ids.has(entry.prefix % want.buckets)) this.#unmatched.add(hashId(hash));
    }
  }

  /**
   * The latest state of `key` (a source row's) as phase A read it: undefined when the topic never
   * had it, version -1 when it was removed (a Kafka tombstone). The key counts as known to the source.
   */
  lookup(key: string): TopicState | undefined {
    const { hash } = keyHashes(key);
    this.#unmatched.delete(hashId(hash));
    const entry = this.#fold.table.get(hash);
    return entry && { version: entry.version, acl_version: entry.aclVersion, searchable: entry.searchable };
  }

  /** Searchable keys of the differing buckets that no source row named (after every lookup). */
  get unknown(): number {
    return this.#unmatched.size;
  }

  /**
   * The latest state of each key `lookup` never named, by key (`tenant:document`), from a second
   * read of the topic that keeps those keys only. Empty, without reading, when there are none.
   */
  async unknownKeys(
    kafka: Kafka,
    topic: string,
    groupId: string,
    signal?: AbortSignal,
  ): Promise<Map<string, TopicState>> {
    if (this.#unmatched.size === 0) return new Map();
    const unmatched = this.#unmatched;
    return readStates(kafka, topic, groupId, (key) => unmatched.has(hashId(keyHashes(key).hash)), signal);
  }
}

/** The latest state of every key for which `want(key)` holds: a read of the topic to its end. */
async function readStates(
  kafka: Kafka,
  topic: string,
  groupId: string,
  want: (key: string) => boolean,
  signal?: AbortSignal,
): Promise<Map<string, TopicState>> {
  const latest = new Map<string, TopicState>();
  await readCompactedToEnd(
    kafka,
    topic,
    (message) => {
      const key = message.key?.toString('utf8');
      if (key === undefined || splitKey(key) === undefined || !want(key)) return;
      const state = parseStateValue(message.value);
      if (state === undefined) return;
      const next = state ?? { version: -1, acl_version: -1, searchable: false };
      const prev = latest.get(key);
      if (
        prev &&
        (next.version < prev.version || (next.version === prev.version && next.acl_version < prev.acl_version))
      ) {
        return;
      }
      latest.set(key, next);
    },
    { groupId, signal },
  );
  return latest;
}
