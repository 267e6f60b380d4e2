import { readInventory } from "./inventory.ts";
import { imageUsage, planPrune, storeBytes } from "./prune-plan.ts";
import type { Store } from "./store.ts";
import { findStaleFiles, listPartials } from "./sweep.ts";

export interface ImageDiskUsage {
  readonly reference: string;
  /** Bytes of the image's blobs (manifest, config, layers, source index) on disk. */
  readonly bytes: number;
  /** Bytes of its blobs that another stored image also uses. */
  readonly sharedBytes: number;
  /** Bytes only this image uses: what removing it alone would free. */
  readonly uniqueBytes: number;
  readonly pinned: boolean;
  readonly lastUsedAt: string | undefined;
}

export interface DiskUsage {
  readonly imageCount: number;
  readonly blobCount: number;
  /** Sum of the blob files' sizes; a blob shared by several images counts once. */
  readonly bytes: number;
  /** What `prune` (no options) would free: dangling blobs and stale working files. */
  readonly reclaimableBytes: number;
  /** Downloads not yet verified (ingest partials), those of running pulls included; not in `bytes`. */
  readonly partials: { readonly count: number; readonly bytes: number };
  readonly images: readonly ImageDiskUsage[];
}

/** `df`: a read-only snapshot (no lock); numbers may lag a concurrent pull or prune. */
export async function diskUsage(store: Store): Promise<DiskUsage> {
  const inventory = await readInventory(store, { cleanLeases: false });
  const { graph } = inventory;
  const plan = planPrune(graph);
  const stale = await findStaleFiles(store.root, { leased: graph.keep });
  const partials = await listPartials(store.root);
  const usage = imageUsage(graph);
  return {
    imageCount: graph.images.length,
    blobCount: graph.blobs.size,
    bytes: storeBytes(graph),
    reclaimableBytes: plan.bytes + stale.reduce((sum, f) => sum + f.bytes, 0),
    partials: { count: partials.length, bytes: partials.reduce((sum, f) => sum + f.bytes, 0) },
    images: inventory.images.map((image, i) => ({
      ...(usage[i] as (typeof usage)[number]),
      pinned: image.pinned,
      lastUsedAt: image.lastUsedAt > 0 ? new Date(image.lastUsedAt).toISOString() : undefined,
    })),
  };
}
