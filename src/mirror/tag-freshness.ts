/** After an upstream failure, tags are served stale without asking again for this long. */
export const STALE_RETRY_MS = 10_000;

/** What the mirror knows of a tag when a client asks for its manifest. */
export interface TagState {
  /** The store records a digest for the tag. */
  stored: boolean;
  /** When the upstream last confirmed the stored digest. */
  validatedAt: number | undefined;
  /** When the upstream last failed for the tag. */
  failedAt: number | undefined;
  now: number;
  tagTtlMs: number;
}

/**
 * How to answer a manifest by tag: "stale" (the upstream just failed: the stored digest
 * now, with a warning, rather than wait on retries again), "fresh" (validated within the
 * TTL: the stored digest) or "revalidate" (ask the upstream).
 */
export function tagAnswer(tag: TagState): "stale" | "fresh" | "revalidate" {
  if (!tag.stored) return "revalidate";
  if (tag.failedAt !== undefined && tag.now - tag.failedAt < STALE_RETRY_MS) return "stale";
  if (tag.validatedAt !== undefined && tag.now - tag.validatedAt < tag.tagTtlMs) return "fresh";
  return "revalidate";
}
