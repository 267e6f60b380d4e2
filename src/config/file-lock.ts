/**
 * The lock beside a file that several processes read-modify-write (two `ferry login`s):
 * fsx's lock, broken when its owner is gone, its timeout worded for the credentials file.
 */
import { acquireLock } from "../fsx/index.ts";
import { FerryError } from "../observe/index.ts";

const DEFAULT_TIMEOUT_MS = 10_000;

/** Runs `work` while holding `lockPath`. */
export async function withFileLock<T>(
  lockPath: string,
  work: () => Promise<T>,
  options: { timeoutMs?: number | undefined } = {},
): Promise<T> {
  const lock = await acquireLock(lockPath, {
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    lockedError: (owner) =>
      new FerryError("FERRY_CONFIG_LOCKED", `timed out waiting for lock ${lockPath}`, {
        hint: `another process (pid ${owner.pid}) is updating the credentials file; try again, or remove ${lockPath} if pid ${owner.pid} is not running ferry`,
        fields: { path: lockPath, pid: owner.pid },
      }),
  });
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
