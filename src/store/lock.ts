import { link, readFile, readlink, rename, rm, symlink } from "node:fs/promises";
import { resolve } from "node:path";
import { FerryError } from "../observe/index.ts";
import { diskError, isProcessAlive } from "./atomic.ts";
import { Turns } from "./turns.ts";
import { uniqueHex } from "./unique.ts";

export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Who a lock file names: its pid, and whether that is this very process. */
export interface LockOwner {
  readonly pid: number;
  readonly thisProcess: boolean;
}

// Tells this process's lock files from another's with the same pid (another pid namespace).
const PROCESS_TAG = uniqueHex();

// Process-wide on purpose: the lock file is one per process, so the queue in front of it is too.
const turns = new Turns();

/**
 * A lock shared between processes. Within this process, callers queue on an in-process
 * mutex per path; only its head waits on the file, and only for other processes.
 * The file is a symlink whose target names the owner (pid, process tag, random): created
 * atomically with its content, and it needs no data block, so a full disk can still be locked
 * (and pruned). A lock whose owner is gone, or that names this process while no caller here
 * holds it (a leftover), is broken.
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const key = resolve(path);
  await turns.take(key, {
    timeoutMs,
    signal: options.signal,
    timedOut: () => lockedError(path, timeoutMs, { pid: process.pid, thisProcess: true }),
  });
  try {
    const token = `${process.pid} ${PROCESS_TAG} ${uniqueHex()}${uniqueHex()}`;
    await createLockFile(path, token, deadline, timeoutMs, options.signal);
    return {
      path,
      release: async () => {
        try {
          // Only remove the lock if it is still ours.
          if ((await readOwnerText(path)) === token) await rm(path, { force: true });
        } finally {
          turns.give(key);
        }
      },
    };
  } catch (err) {
    turns.give(key);
    throw err;
  }
}

async function createLockFile(
  path: string,
  token: string,
  deadline: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      await symlink(token, path);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw diskError(err, path);
    }
    const owner = await breakIfStale(path);
    if (signal?.aborted)
      throw new FerryError("FERRY_INTERRUPTED", "cancelled while waiting for a store lock");
    if (Date.now() > deadline && owner !== undefined) throw lockedError(path, timeoutMs, owner);
    await new Promise((r) => setTimeout(r, wait));
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

/** The lock file's owner text: a symlink's target, or (locks of older ferry versions) a file's content. */
async function readOwnerText(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (err) {
    if ((err as { code?: string }).code !== "EINVAL") return undefined;
  }
  return readFile(path, "utf8").catch(() => undefined);
}

function ownerOf(text: string): LockOwner & { alive: boolean } {
  const [pid, tag] = text.split(" ");
  const n = Number(pid);
  const thisProcess = n === process.pid && tag === PROCESS_TAG;
  return { pid: n, thisProcess, alive: !thisProcess && isProcessAlive(n) };
}

/**
 * Whether a live holder has the lock: a caller in this process, or another running process.
 * A file naming this process that no caller here holds is a leftover, not a holder.
 */
export async function isLockHeld(path: string): Promise<boolean> {
  if (turns.isTaken(resolve(path))) return true;
  const text = await readOwnerText(path);
  return text !== undefined && ownerOf(text).alive;
}

/**
 * Breaks the lock if its owner is gone; returns the live owner, or undefined when the
 * lock was absent or broken. Only called by the caller holding this process's turn,
 * so a lock naming this process is a leftover.
 */
async function breakIfStale(path: string): Promise<LockOwner | undefined> {
  const content = await readOwnerText(path);
  if (content === undefined) return undefined;
  const owner = ownerOf(content);
  if (owner.alive) return { pid: owner.pid, thisProcess: false };
  // Move the stale lock aside atomically; if what we moved is not what we judged stale
  // (another process replaced it meanwhile), put it back.
  const aside = `${path}.stale-${process.pid}-${uniqueHex()}`;
  try {
    await rename(path, aside);
  } catch {
    return undefined;
  }
  const moved = await readOwnerText(aside);
  if (moved !== content) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
  return undefined;
}
