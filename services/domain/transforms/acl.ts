/**
 * ACLs are sets of principals. They are compared and stored normalized (unique, sorted by code
 * unit, not locale) so that equal sets are equal arrays everywhere: Kafka payloads, ledger,
 * sink rows and reconciler checksums.
 */

/** Unique principals sorted by UTF-16 code unit order (locale-independent, hence stable). */
export function normalizeAcl(principals: Iterable<string>): string[] {
  return [...new Set(principals)].sort(compareCodeUnits);
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** true when both hold the same principals, in any order and with any duplicates. */
export function sameAcl(a: Iterable<string>, b: Iterable<string>): boolean {
  const left = normalizeAcl(a);
  const right = normalizeAcl(b);
  return left.length === right.length && left.every((p, i) => p === right[i]);
}

export interface AclDiff {
  /** Principals in `after` but not in `before`, normalized. */
  added: string[];
  /** Principals in `before` but not in `after`, normalized. */
  removed: string[];
  /** true when anything was added or removed. */
  changed: boolean;
}

/** What changed between two ACLs; both sides may be unnormalized. */
export function diffAcl(before: Iterable<string>, after: Iterable<string>): AclDiff {
  const old = new Set(before);
  const next = new Set(after);
  const added = normalizeAcl([...next].filter((p) => !old.has(p)));
  const removed = normalizeAcl([...old].filter((p) => !next.has(p)));
  return { added, removed, changed: added.length > 0 || removed.length > 0 };
}
