import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { isManifestMediaType, parseManifest } from "../oci/index.ts";
import { readIndexEntries, targetOf } from "./index-file.ts";
import { type LeaseRecord, readLeases } from "./lease.ts";
import { forEachLimited } from "./parallel.ts";
import type { ImageNode, StoreGraph } from "./prune-plan.ts";
import { type ImageRecord, imageRecordOf, type Store } from "./store.ts";
import { lastUse } from "./use.ts";

// Reads a snapshot of the store into the graph that prune, df and fsck decide on.

export interface InventoryImage extends ImageNode {
  readonly record: ImageRecord;
  /** False when the manifest blob is absent or unreadable: only its own digests are known. */
  readonly manifestReadable: boolean;
}

export interface Inventory {
  readonly graph: StoreGraph;
  readonly images: readonly InventoryImage[];
  readonly leases: readonly LeaseRecord[];
  /** Digests named by index.json entries that ferry did not write (kept, never pruned). */
  readonly foreignRoots: readonly string[];
}

const BLOB_NAME = /^[a-f0-9]{64}$/;

/** Every blob file in the store and its size. */
export async function listBlobs(store: Store): Promise<Map<string, number>> {
  const dir = join(store.root, "blobs", "sha256");
  const names = (await readdir(dir)).filter((n) => BLOB_NAME.test(n)).sort();
  const sizes = new Map<string, number>();
  await forEachLimited(names, 16, async (name) => {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) sizes.set(name, s.size);
  });
  // In name order, whatever order the stats finished in.
  const blobs = new Map<string, number>();
  for (const name of names) {
    const size = sizes.get(name);
    if (size !== undefined) blobs.set(`sha256:${name}`, size);
  }
  return blobs;
}

/** Manifests are small; a larger blob is not read as one (layers are never read whole). */
const MANIFEST_MAX_BYTES = 4 << 20;

interface Child {
  digest: string;
  mediaType: string;
}

/** What a manifest or index names (config and layers; child manifests); [] if unreadable. */
async function childrenOf(store: Store, digest: string, mediaType: string): Promise<Child[]> {
  try {
    const path = store.blobPath(digest);
    if ((await stat(path)).size > MANIFEST_MAX_BYTES) return [];
    const parsed = parseManifest(await readFile(path), mediaType || undefined);
    return parsed.kind === "image"
      ? [parsed.manifest.config, ...parsed.manifest.layers]
      : parsed.index.manifests;
  } catch {
    return [];
  }
}

/** `cleanLeases` removes lease files of dead processes (only under the index lock). */
export async function readInventory(
  store: Store,
  options: { cleanLeases: boolean },
): Promise<Inventory> {
  const entries = await readIndexEntries(store.root);
  const images: InventoryImage[] = [];
  const foreign = new Set<string>();
  for (const entry of entries) {
    const record = imageRecordOf(entry);
    if (record === undefined) {
      const target = targetOf(entry);
      if (target !== undefined) await markForeign(store, target, foreign);
      continue;
    }
    const manifest = record.descriptor.digest;
    const children = (await childrenOf(store, manifest, record.descriptor.mediaType)).map(
      (c) => c.digest,
    );
    const used = await lastUse(store.root, record.reference, record.pulledAt);
    images.push({
      reference: record.reference,
      digests: [...new Set([manifest, record.sourceDigest, ...children])],
      pinned: record.pinned,
      leased: false,
      lastUsedAt: used?.getTime() ?? 0,
      record,
      manifestReadable: children.length > 0,
    });
  }
  const leases = await readLeases(store.root, options.cleanLeases);
  const keep = new Set(foreign);
  const leasedNames = new Set<string>();
  for (const lease of leases) {
    for (const d of lease.digests) keep.add(d);
    if (lease.reference !== undefined) leasedNames.add(lease.reference);
  }
  const marked = images.map((i) => (leasedNames.has(i.reference) ? { ...i, leased: true } : i));
  return {
    graph: { images: marked, blobs: await listBlobs(store), keep },
    images: marked,
    leases,
    foreignRoots: [...foreign],
  };
}

/** Entries another tool wrote: keep everything reachable from them, whatever it is. */
async function markForeign(store: Store, target: Child, into: Set<string>): Promise<void> {
  const queue: Child[] = [target];
  while (queue.length > 0) {
    const next = queue.pop() as Child;
    if (into.has(next.digest)) continue;
    into.add(next.digest);
    const isManifest = next.mediaType === "" || isManifestMediaType(next.mediaType);
    if (!isManifest || !/^sha256:[a-f0-9]{64}$/.test(next.digest)) continue;
    queue.push(...(await childrenOf(store, next.digest, next.mediaType)));
  }
}
