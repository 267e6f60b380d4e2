import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { readInventory } from "./inventory.ts";
import type { Store } from "./store.ts";

export interface CorruptBlob {
  readonly digest: string;
  /** What the file hashes to. */
  readonly actual: string;
  readonly bytes: number;
  /** Where the file was moved (under ferry/quarantine/). */
  readonly quarantinedTo: string;
  /** Images that need this blob. */
  readonly images: readonly string[];
}

export interface MissingBlob {
  readonly digest: string;
  readonly images: readonly string[];
}

export interface FsckReport {
  readonly blobsChecked: number;
  readonly bytesChecked: number;
  readonly corrupt: readonly CorruptBlob[];
  readonly missing: readonly MissingBlob[];
  /** Images that cannot be used until pulled again. */
  readonly brokenImages: readonly string[];
  readonly ok: boolean;
}

const HASH_CONCURRENCY = 8;
const READ_CHUNK = 1 << 20;

export function quarantineDir(root: string): string {
  return join(root, "ferry", "quarantine");
}

/** Hashes a file as a stream (memory stays at one chunk); undefined if it vanished meanwhile. */
async function hashFile(path: string, size: number): Promise<string | undefined> {
  const hash = createHash("sha256");
  try {
    if (size <= READ_CHUNK) {
      hash.update(await readFile(path)); // small blobs (most of them): one read, no stream
    } else {
      for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
        hash.update(chunk as Buffer);
      }
    }
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return undefined;
    throw err;
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Re-hashes every blob; moves those whose content does not match their name to
 * ferry/quarantine/ (so the next pull fetches them again), and lists blobs that
 * recorded images need but the store lacks. Takes no lock: it only ever removes
 * content that is wrong anyway.
 */
export async function checkStore(store: Store): Promise<FsckReport> {
  const inventory = await readInventory(store, { cleanLeases: false });
  const users = new Map<string, string[]>();
  for (const image of inventory.images) {
    for (const d of image.digests) users.set(d, [...(users.get(d) ?? []), image.reference]);
  }
  const queue = [...inventory.graph.blobs];
  const corrupt: CorruptBlob[] = [];
  let checked = 0;
  let bytes = 0;
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [digest, size] = next;
      const actual = await hashFile(store.blobPath(digest), size);
      if (actual === undefined) continue;
      checked++;
      bytes += size;
      if (actual === digest) continue;
      const to = join(quarantineDir(store.root), digest.slice("sha256:".length));
      await mkdir(quarantineDir(store.root), { recursive: true });
      await rename(store.blobPath(digest), to);
      corrupt.push({
        digest,
        actual,
        bytes: size,
        quarantinedTo: to,
        images: users.get(digest) ?? [],
      });
    }
  };
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, worker));

  const bad = new Set(corrupt.map((c) => c.digest));
  const recorded = new Set((await store.images()).map((r) => r.reference));
  const missing: MissingBlob[] = [];
  for (const [digest, images] of users) {
    if (bad.has(digest) || inventory.graph.blobs.has(digest)) continue;
    const still = images.filter((r) => recorded.has(r)); // a concurrent prune may have untagged them
    if (still.length > 0 && !(await store.hasBlob(digest))) missing.push({ digest, images: still });
  }
  const broken = new Set<string>();
  for (const c of corrupt) for (const r of c.images) broken.add(r);
  for (const m of missing) for (const r of m.images) broken.add(r);
  corrupt.sort((a, b) => a.digest.localeCompare(b.digest));
  missing.sort((a, b) => a.digest.localeCompare(b.digest));
  return {
    blobsChecked: checked,
    bytesChecked: bytes,
    corrupt,
    missing,
    brokenImages: [...broken].sort(),
    ok: corrupt.length === 0 && missing.length === 0,
  };
}
