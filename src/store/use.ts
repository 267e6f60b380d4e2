import { readdir, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { digestOf, SMALL_SHA256_MAX, smallSha256Hex } from "../digest/index.ts";
import { diskError, writeFileAtomic } from "./atomic.ts";

// Last-use records: one empty-ish file per reference, `ferry/use/<sha256 of the reference>`,
// whose mtime is the last use. A use is a utimes, so marking an image used never rewrites
// index.json (no lock, no fsync). Without a record, an image was last used when it was pulled.

export function useDir(root: string): string {
  return join(root, "ferry", "use");
}

export function usePath(root: string, reference: string): string {
  // A repeat pull writes this: hashed without loading node:crypto (digest/sha256.ts).
  const bytes = Buffer.from(reference, "utf8");
  const hex =
    bytes.length <= SMALL_SHA256_MAX
      ? smallSha256Hex(bytes)
      : digestOf(bytes).slice("sha256:".length);
  return join(useDir(root), hex);
}

/** Marks `reference` used now (or at `at`). */
export async function touchUse(root: string, reference: string, at = new Date()): Promise<void> {
  const path = usePath(root, reference);
  try {
    await utimes(path, at, at);
    return;
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOENT") throw diskError(err, path);
  }
  // The content names the reference, for humans; only the mtime is read.
  await writeFileAtomic(path, `${reference}\n`, { durable: false, mtime: at });
}

/** When `reference` was last used: its record's mtime, else `pulledAt`, else undefined. */
export async function lastUse(
  root: string,
  reference: string,
  pulledAt: string | undefined,
): Promise<Date | undefined> {
  try {
    return (await stat(usePath(root, reference))).mtime;
  } catch {
    const pulled = pulledAt === undefined ? Number.NaN : Date.parse(pulledAt);
    return Number.isNaN(pulled) ? undefined : new Date(pulled);
  }
}

export async function removeUse(root: string, reference: string): Promise<void> {
  await rm(usePath(root, reference), { force: true });
}

/** Removes records of references no longer in the store; returns how many. */
export async function removeOrphanUses(
  root: string,
  references: Iterable<string>,
): Promise<number> {
  const wanted = new Set<string>();
  for (const r of references) wanted.add(usePath(root, r));
  let removed = 0;
  for (const name of await readdir(useDir(root)).catch(() => [] as string[])) {
    const path = join(useDir(root), name);
    if (/^[a-f0-9]{64}$/.test(name) && !wanted.has(path)) {
      await rm(path, { force: true });
      removed++;
    }
  }
  return removed;
}
