import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { FerryError } from "../observe/index.ts";
import { Annotation, MediaType } from "../oci/index.ts";
import { writeFileAtomic } from "./atomic.ts";
import { acquireLock } from "./lock.ts";

// index.json as ferry reads and writes it. Entries stay `unknown`: ones another tool
// wrote are kept byte-for-byte even when ferry cannot parse them.

export function indexPath(root: string): string {
  return join(root, "index.json");
}

/** Runs `fn` holding the lock that serialises index.json changes, leases and garbage collection. */
export async function withIndexLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(join(root, "ferry", "index.lock"));
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

export async function readIndexEntries(root: string): Promise<unknown[]> {
  const path = indexPath(root);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return [];
    throw err;
  }
  try {
    const index = JSON.parse(text) as { manifests?: unknown } | null;
    return Array.isArray(index?.manifests) ? index.manifests : [];
  } catch (cause) {
    throw new FerryError("FERRY_STORE_CORRUPT", `${path} is not valid JSON`, {
      hint: "restore it from a backup or move the store aside and pull again",
      cause,
    });
  }
}

/** Replaces index.json atomically: after kill -9 readers see the old index or the new one. */
export async function writeIndexEntries(root: string, manifests: unknown[]): Promise<void> {
  const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  await writeFileAtomic(indexPath(root), `${JSON.stringify(index, null, 2)}\n`);
}

export function annotationsOf(entry: unknown): Record<string, unknown> | undefined {
  const annotations = (entry as { annotations?: unknown } | null)?.annotations;
  return typeof annotations === "object" && annotations !== null
    ? (annotations as Record<string, unknown>)
    : undefined;
}

export function refNameOf(entry: unknown): string | undefined {
  const name = annotationsOf(entry)?.[Annotation.refName];
  return typeof name === "string" ? name : undefined;
}

/** The entry's digest and media type, when it has them (whatever else it lacks). */
export function targetOf(entry: unknown): { digest: string; mediaType: string } | undefined {
  const e = entry as { digest?: unknown; mediaType?: unknown } | null;
  if (typeof e?.digest !== "string") return undefined;
  return { digest: e.digest, mediaType: typeof e.mediaType === "string" ? e.mediaType : "" };
}
