import { createHash } from "node:crypto";

/**
 * Rendezvous (highest-random-weight) hashing: every member scores every digest
 * with a hash of both, and the highest score owns it. Nodes that see the same
 * members agree on the owner without talking to each other, and removing a member
 * moves only the digests it owned (each to its own runner-up).
 */
export function score(member: string, digest: string): bigint {
  return createHash("sha256")
    .update(member)
    .update("\n")
    .update(digest)
    .digest()
    .readBigUInt64BE(0);
}

/** Members ordered by their score for `digest`, owner first; ties (never in practice) by name. */
export function rank(members: Iterable<string>, digest: string): string[] {
  const scored = [...new Set(members)].map((m) => ({ m, s: score(m, digest) }));
  scored.sort((a, b) => (a.s === b.s ? a.m.localeCompare(b.m) : a.s > b.s ? -1 : 1));
  return scored.map((x) => x.m);
}
