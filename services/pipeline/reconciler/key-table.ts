import type { Digest64 } from '../../domain/transforms/drift.ts';

/**
 * The latest state per key of the state topic, without holding a single string.
 *
 * A compacted topic is only compacted eventually: the active segment and the dirty part of the log
 * hold several values per key, so "latest value per key" needs one entry per key while the topic is
 * read. This table keeps that entry as 41 bytes in typed arrays (open addressing, linear probing,
 * sized for the expected keys at a load factor of 2/3, doubled past 3/4): a 64-bit key hash, the
 * first 32 bits of md5(key) (the bucket, see `bucketOf`), a tenant index, both versions, a
 * searchable flag and the 64-bit state digest. About 62 bytes per key when the expectation holds
 * (up to 110 after growing), against several hundred for a Map of strings.
 *
 * Two distinct keys with the same 64-bit hash (probability about n²/2⁶⁵: 3·10⁻⁶ at ten million keys)
 * would count as one: their bucket would differ, and the drill-down, which looks keys up by the same
 * hash, would judge both by the surviving state, so one of them could be reported as off (a repair
 * publishes its current state again, which is harmless).
 */

export interface KeyEntry {
  /** Index of the tenant in the caller's tenant list. */
  tenant: number;
  /** First 32 bits of md5(key): the bucket is `prefix % buckets`. */
  prefix: number;
  version: number;
  aclVersion: number;
  searchable: boolean;
  /** `stateDigest` of the state (meaningful when searchable). */
  digest: Digest64;
}

const OCCUPIED = 1;
const SEARCHABLE = 2;

export class KeyTable {
  #capacity: number;
  #size = 0;
  #hashHi!: Uint32Array;
  #hashLo!: Uint32Array;
  #prefix!: Uint32Array;
  #tenant!: Uint32Array;
  #digestHi!: Uint32Array;
  #digestLo!: Uint32Array;
  #version!: Float64Array;
  #aclVersion!: Float64Array;
  #flags!: Uint8Array;

  /**
   * `expectedKeys`: how many keys the caller expects (the reconciler: the source's documents and
   * tombstones in scope). The table is sized for them at a load factor of 2/3, so it does not
   * grow while the topic is read; growing doubles it and holds the old arrays meanwhile.
   */
  constructor(expectedKeys = 12_000) {
    this.#capacity = Math.max(16, Math.ceil(expectedKeys * 1.5));
    this.#allocate(this.#capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held by the table's arrays. */
  get bytes(): number {
    return this.#capacity * 41;
  }

  /**
   * Records a state for the key with this 64-bit hash. The newest state wins: the higher
   * (version, aclVersion), a tie going to the later call (later offset). A removed key (a Kafka
   * tombstone) is recorded as version -1, not searchable, so anything after it wins.
   */
  put(hash: Digest64, entry: KeyEntry): void {
    if ((this.#size + 1) * 4 > this.#capacity * 3) this.#grow();
    const { hi, lo } = hash;
    const slot = this.#find(hi, lo);
    if (this.#flags[slot]! & OCCUPIED) {
      const v = this.#version[slot]!;
      const av = this.#aclVersion[slot]!;
      if (entry.version < v || (entry.version === v && entry.aclVersion < av)) return;
    } else {
      this.#size++;
      this.#hashHi[slot] = hi;
      this.#hashLo[slot] = lo;
    }
    this.#prefix[slot] = entry.prefix;
    this.#tenant[slot] = entry.tenant;
    this.#version[slot] = entry.version;
    this.#aclVersion[slot] = entry.aclVersion;
    this.#digestHi[slot] = entry.digest.hi;
    this.#digestLo[slot] = entry.digest.lo;
    this.#flags[slot] = OCCUPIED | (entry.searchable ? SEARCHABLE : 0);
  }

  /** The latest state recorded for the key with this 64-bit hash (undefined: never recorded). */
  get(hash: Digest64): KeyEntry | undefined {
    const slot = this.#find(hash.hi, hash.lo);
    return this.#flags[slot]! & OCCUPIED ? this.#entry(slot) : undefined;
  }

  /** Every key's latest state, in no particular order. */
  *entries(): Generator<KeyEntry> {
    for (let slot = 0; slot < this.#capacity; slot++) {
      const flags = this.#flags[slot]!;
      if (!(flags & OCCUPIED)) continue;
      yield this.#entry(slot);
    }
  }

  /** Every key's latest state with its 64-bit hash, in no particular order. */
  *hashedEntries(): Generator<[Digest64, KeyEntry]> {
    for (let slot = 0; slot < this.#capacity; slot++) {
      if (!(this.#flags[slot]! & OCCUPIED)) continue;
      yield [{ hi: this.#hashHi[slot]!, lo: this.#hashLo[slot]! }, this.#entry(slot)];
    }
  }

  #entry(slot: number): KeyEntry {
    return {
      tenant: this.#tenant[slot]!,
      prefix: this.#prefix[slot]!,
      version: this.#version[slot]!,
      aclVersion: this.#aclVersion[slot]!,
      searchable: (this.#flags[slot]! & SEARCHABLE) !== 0,
      digest: { hi: this.#digestHi[slot]!, lo: this.#digestLo[slot]! },
    };
  }

  #find(hi: number, lo: number): number {
    const capacity = this.#capacity;
    // The low word is already uniformly distributed (md5); any capacity will do.
    let slot = lo % capacity;
    while (this.#flags[slot]! & OCCUPIED) {
      if (this.#hashLo[slot] === lo && this.#hashHi[slot] === hi) return slot;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
    return slot;
  }

  #allocate(capacity: number): void {
    this.#hashHi = new Uint32Array(capacity);
    this.#hashLo = new Uint32Array(capacity);
    this.#prefix = new Uint32Array(capacity);
    this.#tenant = new Uint32Array(capacity);
    this.#digestHi = new Uint32Array(capacity);
    this.#digestLo = new Uint32Array(capacity);
    this.#version = new Float64Array(capacity);
    this.#aclVersion = new Float64Array(capacity);
    this.#flags = new Uint8Array(capacity);
  }

  #grow(): void {
    const old = {
      capacity: this.#capacity,
      hashHi: this.#hashHi,
      hashLo: this.#hashLo,
      prefix: this.#prefix,
      tenant: this.#tenant,
      digestHi: this.#digestHi,
      digestLo: this.#digestLo,
      version: this.#version,
      aclVersion: this.#aclVersion,
      flags: this.#flags,
    };
    this.#capacity *= 2;
    this.#allocate(this.#capacity);
    for (let i = 0; i < old.capacity; i++) {
      if (!(old.flags[i]! & OCCUPIED)) continue;
      const slot = this.#find(old.hashHi[i]!, old.hashLo[i]!);
      this.#hashHi[slot] = old.hashHi[i]!;
      this.#hashLo[slot] = old.hashLo[i]!;
      this.#prefix[slot] = old.prefix[i]!;
      this.#tenant[slot] = old.tenant[i]!;
      this.#digestHi[slot] = old.digestHi[i]!;
      this.#digestLo[slot] = old.digestLo[i]!;
      this.#version[slot] = old.version[i]!;
      this.#aclVersion[slot] = old.aclVersion[i]!;
      this.#flags[slot] = old.flags[i]!;
    }
  }
}
