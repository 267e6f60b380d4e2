import { randomBytes } from "node:crypto";
import { link, readFile, rename, rm, writeFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";
import { isProcessAlive } from "./atomic.ts";

export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * A lock file shared between processes: created with O_EXCL and holding the
 * owner's pid, so a lock left by a killed process is recognised and broken.
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const token = `${process.pid} ${randomBytes(8).toString("hex")}`;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      await writeFile(path, token, { flag: "wx" });
      return {
        path,
        release: async () => {
          // Only remove the lock if it is still ours.
          const now = await readFile(path, "utf8").catch(() => "");
          if (now === token) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
    }
    await breakIfStale(path);
    if (options.signal?.aborted)
      throw new FerryError("FERRY_INTERRUPTED", "cancelled while waiting for a store lock");
    if (Date.now() > deadline) {
      throw new FerryError("FERRY_STORE_LOCKED", `timed out waiting for lock ${path}`, {
        hint: "another ferry process is holding the store; wait for it to finish, or remove the lock file if no ferry process is running",
        fields: { path },
      });
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function breakIfStale(path: string): Promise<void> {
  const content = await readFile(path, "utf8").catch(() => undefined);
  if (content === undefined) return;
  const pid = Number(content.split(" ")[0]);
  if (isProcessAlive(pid)) return;
  // Move the stale lock aside atomically; if what we moved is not what we judged stale
  // (another process replaced it meanwhile), put it back.
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  const moved = await readFile(aside, "utf8").catch(() => "");
  if (moved !== content) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}
