/**
 * A lock file beside a file being read-modify-written by several processes
 * (two `ferry login`s, or ferry and docker): created with O_EXCL, holding the
 * owner's pid, broken when that process is gone.
 */
import { randomBytes } from "node:crypto";
import { link, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";

const DEFAULT_TIMEOUT_MS = 10_000;
/** A lock still empty after this long was left by a process killed between create and write. */
const EMPTY_LOCK_GRACE_MS = 5_000;

/** Runs `work` while holding `lockPath`. */
export async function withFileLock<T>(
  lockPath: string,
  work: () => Promise<T>,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const token = `${process.pid} ${randomBytes(8).toString("hex")}`;
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      await writeFile(lockPath, token, { flag: "wx", mode: 0o600 });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
    }
    await breakIfStale(lockPath);
    if (Date.now() > deadline) {
      throw new FerryError("FERRY_CONFIG_LOCKED", `timed out waiting for lock ${lockPath}`, {
        hint: "another process is updating the credentials file; try again, or remove the lock file if none is running",
        fields: { path: lockPath },
      });
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  try {
    return await work();
  } finally {
    const now = await readFile(lockPath, "utf8").catch(() => "");
    if (now === token) await rm(lockPath, { force: true });
  }
}

async function breakIfStale(lockPath: string): Promise<void> {
  const content = await readFile(lockPath, "utf8").catch(() => undefined);
  if (content === undefined) return;
  if (content === "") {
    const info = await stat(lockPath).catch(() => undefined);
    if (info === undefined || Date.now() - info.mtimeMs < EMPTY_LOCK_GRACE_MS) return;
  } else if (isProcessAlive(Number(content.split(" ")[0]))) {
    return;
  }
  // Move the stale lock aside; if what moved is not what was judged stale
  // (another process replaced it meanwhile), put it back.
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return;
  }
  const moved = await readFile(aside, "utf8").catch(() => "");
  if (moved !== content) await link(aside, lockPath).catch(() => undefined);
  await rm(aside, { force: true });
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}
