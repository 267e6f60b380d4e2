// Which images and blobs a prune removes: pure decisions over a snapshot of the store.
// Mark-and-sweep with reference counts, so evicting images one by one knows at each step
// how much the store has shrunk.

/** One named image and every blob it needs. */
export interface ImageNode {
  readonly reference: string;
  /** Manifest, config, layers and the source index (if any), without duplicates. */
  readonly digests: readonly string[];
  readonly pinned: boolean;
  /** A running pull is writing this name. */
  readonly leased: boolean;
  /** Milliseconds since the epoch. */
  readonly lastUsedAt: number;
}

/** A snapshot of the store. */
export interface StoreGraph {
  readonly images: readonly ImageNode[];
  /** Blob files on disk and their sizes. */
  readonly blobs: ReadonlyMap<string, number>;
  /** Digests kept whatever happens: held by leases, or reachable from index entries ferry did not write. */
  readonly keep: ReadonlySet<string>;
}

/**
 * What to remove besides dangling blobs (which always go).
 * `expire`: every eligible image last used at or before `usedBefore` (--all, --until, max age).
 * `evict`: eligible images, least recently used first, until the store holds at most
 * `keepBytes` or `freeBytes` have been freed; only those used at or before `usedBefore` if set.
 * Eligible means neither pinned nor being pulled.
 */
export interface PruneRule {
  readonly expire?: { readonly usedBefore: number };
  readonly evict?: {
    readonly keepBytes?: number;
    readonly freeBytes?: number;
    readonly usedBefore?: number;
  };
}

export interface RemovedImage {
  readonly reference: string;
  readonly lastUsedAt: number;
  readonly reason: "expired" | "evicted";
  /** Blobs that became unreferenced when this image went (shared ones go with the last user). */
  readonly blobs: number;
  readonly bytes: number;
}

export interface PrunePlan {
  readonly images: readonly RemovedImage[];
  /** Blobs to delete: dangling ones and those only removed images used. */
  readonly blobs: readonly string[];
  readonly bytes: number;
  readonly storeBytes: number;
}

export function storeBytes(graph: StoreGraph): number {
  let total = 0;
  for (const size of graph.blobs.values()) total += size;
  return total;
}

/** Least recently used first; ties by name so plans are reproducible. */
export function byLeastRecentUse(a: ImageNode, b: ImageNode): number {
  return a.lastUsedAt - b.lastUsedAt || (a.reference < b.reference ? -1 : 1);
}

export function planPrune(graph: StoreGraph, rule: PruneRule = {}): PrunePlan {
  const refs = new Map<string, number>();
  for (const image of graph.images) {
    for (const d of new Set(image.digests)) refs.set(d, (refs.get(d) ?? 0) + 1);
  }
  const before = storeBytes(graph);
  const doomed: string[] = [];
  let freed = 0;
  for (const [digest, size] of graph.blobs) {
    if ((refs.get(digest) ?? 0) === 0 && !graph.keep.has(digest)) {
      doomed.push(digest);
      freed += size;
    }
  }

  const removed: RemovedImage[] = [];
  const gone = new Set<string>();
  const remove = (image: ImageNode, reason: RemovedImage["reason"]) => {
    gone.add(image.reference);
    let blobs = 0;
    let bytes = 0;
    for (const d of new Set(image.digests)) {
      const left = (refs.get(d) ?? 0) - 1;
      refs.set(d, left);
      const size = graph.blobs.get(d);
      if (left === 0 && size !== undefined && !graph.keep.has(d)) {
        doomed.push(d);
        blobs++;
        bytes += size;
      }
    }
    freed += bytes;
    removed.push({
      reference: image.reference,
      lastUsedAt: image.lastUsedAt,
      reason,
      blobs,
      bytes,
    });
  };

  const candidates = graph.images.filter((i) => !i.pinned && !i.leased).sort(byLeastRecentUse);
  if (rule.expire !== undefined) {
    const { usedBefore } = rule.expire;
    for (const image of candidates) if (image.lastUsedAt <= usedBefore) remove(image, "expired");
  }
  const evict = rule.evict;
  if (evict !== undefined) {
    const satisfied = () =>
      (evict.keepBytes === undefined || before - freed <= evict.keepBytes) &&
      (evict.freeBytes === undefined || freed >= evict.freeBytes);
    for (const image of candidates) {
      if (satisfied()) break;
      if (gone.has(image.reference)) continue;
      if (evict.usedBefore !== undefined && image.lastUsedAt > evict.usedBefore) continue;
      remove(image, "evicted");
    }
  }
  return { images: removed, blobs: doomed, bytes: freed, storeBytes: before };
}

export interface ImageUsage {
  readonly reference: string;
  /** Bytes of its blobs present on disk. */
  readonly bytes: number;
  /** Bytes of its blobs that another image also uses. */
  readonly sharedBytes: number;
  readonly uniqueBytes: number;
}

/** Per-image sizes for `df -v`: shared blobs are counted in each image, once in the store. */
export function imageUsage(graph: StoreGraph): ImageUsage[] {
  const users = new Map<string, number>();
  for (const image of graph.images) {
    for (const d of new Set(image.digests)) users.set(d, (users.get(d) ?? 0) + 1);
  }
  return graph.images.map((image) => {
    let bytes = 0;
    let sharedBytes = 0;
    for (const d of new Set(image.digests)) {
      const size = graph.blobs.get(d) ?? 0;
      bytes += size;
      if ((users.get(d) ?? 0) > 1) sharedBytes += size;
    }
    return { reference: image.reference, bytes, sharedBytes, uniqueBytes: bytes - sharedBytes };
  });
}

/** `prune`'s options as a rule: --all / --until remove every eligible image (used before now − until); --keep-storage evicts LRU (among those) until the store fits. */
export function pruneRule(
  options: { all?: boolean; untilMs?: number; keepBytes?: number },
  now: number,
): PruneRule {
  const usedBefore = options.untilMs === undefined ? undefined : now - options.untilMs;
  if (options.keepBytes !== undefined) {
    return {
      evict: { keepBytes: options.keepBytes, ...(usedBefore === undefined ? {} : { usedBefore }) },
    };
  }
  if (options.all === true || usedBefore !== undefined) {
    return { expire: { usedBefore: usedBefore ?? Number.POSITIVE_INFINITY } };
  }
  return {};
}
