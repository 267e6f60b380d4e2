import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isProcessAlive, STALE_ASIDE, TEMP_NAME } from "../fsx/index.ts";
import { leaseDir } from "./lease.ts";
import { acquireLock, isLockHeld } from "./lock.ts";
import { useDir } from "./use.ts";

// Working files that nothing will use again: temp files and lock asides of dead
// processes, and ingest partials no live process holds (with their locks). An interrupted
// download's partial is one of them: a later pull would resume it, but pruning is asked
// for space, and a partial may be most of a full disk.

export interface StaleFile {
  readonly path: string;
  readonly bytes: number;
  readonly kind: "temp" | "partial" | "lock";
}

const INGEST_FILE = /^([a-f0-9]{64})\.(partial|lock)$/;

export async function findStaleTemp(root: string): Promise<StaleFile[]> {
  const out: StaleFile[] = [];
  const dirs = [
    root,
    join(root, "blobs", "sha256"),
    join(root, "ferry"),
    leaseDir(root),
    useDir(root),
    // Ingest locks moved aside by a lock breaker that was killed.
    join(root, "ferry", "ingest"),
    // ferry mount's chunk cache (src/lazy/mount/chunks.ts): temp files of a mount killed mid-write.
    join(root, "ferry", "lazy-chunks"),
  ];
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const m = TEMP_NAME.exec(name) ?? STALE_ASIDE.exec(name);
      if (m === null || isProcessAlive(Number(m[1]))) continue;
      const path = join(dir, name);
      out.push({ path, bytes: await sizeOf(path), kind: "temp" });
    }
  }
  return out;
}

/**
 * Stale temp files, plus ingest partials that no live process holds (by lock or lease),
 * plus ingest locks of dead processes.
 */
export async function findStaleFiles(
  root: string,
  options: { leased: ReadonlySet<string> },
): Promise<StaleFile[]> {
  const out = await findStaleTemp(root);
  const ingest = join(root, "ferry", "ingest");
  for (const name of await readdir(ingest).catch(() => [] as string[])) {
    const m = INGEST_FILE.exec(name);
    if (m === null || options.leased.has(`sha256:${m[1]}`)) continue;
    const path = join(ingest, name);
    if (await isLockHeld(join(ingest, `${m[1]}.lock`))) continue;
    if (m[2] === "lock") {
      out.push({ path, bytes: 0, kind: "lock" });
      continue;
    }
    out.push({ path, bytes: await sizeOf(path), kind: "partial" });
  }
  return out;
}

/** Every ingest partial and its size, held or not (`df`). */
export async function listPartials(root: string): Promise<StaleFile[]> {
  const ingest = join(root, "ferry", "ingest");
  const out: StaleFile[] = [];
  for (const name of await readdir(ingest).catch(() => [] as string[])) {
    const m = INGEST_FILE.exec(name);
    if (m?.[2] !== "partial") continue;
    const path = join(ingest, name);
    out.push({ path, bytes: await sizeOf(path), kind: "partial" });
  }
  return out;
}

/** Removes what findStaleFiles found, re-checking each ingest file under its lock; returns bytes freed. */
export async function removeStaleFiles(files: readonly StaleFile[]): Promise<number> {
  let freed = 0;
  for (const f of files) {
    if (f.kind === "temp") {
      await rm(f.path, { force: true });
      freed += f.bytes;
      continue;
    }
    const lockPath = f.path.replace(/\.(partial|lock)$/, ".lock");
    let lock: Awaited<ReturnType<typeof acquireLock>>;
    try {
      // Breaks a dead owner's lock; gives up quickly on a live one.
      lock = await acquireLock(lockPath, { timeoutMs: 50 });
    } catch {
      continue;
    }
    try {
      if (f.kind === "partial") {
        const bytes = await sizeOf(f.path);
        await rm(f.path, { force: true });
        freed += bytes;
      }
    } finally {
      await lock.release(); // removes the lock file: a lock kind is done here
    }
  }
  return freed;
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}
