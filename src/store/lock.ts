import {
  acquireLock as acquireFileLock,
  isLockHeld,
  type Lock,
  type LockOwner,
} from "../fsx/index.ts";
import { FerryError } from "../observe/index.ts";
import { diskError } from "./atomic.ts";

export { isLockHeld, type Lock, type LockOwner };

export interface LockOptions {
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

/** A store lock (fsx's symlink lock): a full disk can still be locked; a timeout names the owner. */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  try {
    return await acquireFileLock(path, {
      ...options,
      lockedError: (owner, timeoutMs) => lockedError(path, timeoutMs, owner),
    });
  } catch (err) {
    throw diskError(err, path);
  }
}

function lockedError(path: string, timeoutMs: number, owner: LockOwner): FerryError {
  const whose = owner.thisProcess
    ? `held by this process (pid ${owner.pid})`
    : `held by process ${owner.pid}`;
  return new FerryError(
    "FERRY_STORE_LOCKED",
    `timed out after ${Math.round(timeoutMs / 1000)} s waiting for lock ${path}, ${whose}`,
    {
      hint: owner.thisProcess
        ? "this ferry process is itself busy with the store (e.g. a long prune); try again when it is done, and report it if it keeps happening"
        : `another process (pid ${owner.pid}) is holding the store; wait for it to finish, or remove ${path} if pid ${owner.pid} is not a ferry process`,
      fields: { path, pid: owner.pid, thisProcess: owner.thisProcess },
    },
  );
}
