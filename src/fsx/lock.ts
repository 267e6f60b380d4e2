import { link, readFile, readlink, rename, rm, symlink } from "node:fs/promises";
import { resolve } from "node:path";
import { FerryError } from "../observe/index.ts";
import { isProcessAlive } from "./process.ts";
import { Turns } from "./turns.ts";
import { uniqueHex } from "./unique.ts";

export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  /** The error for a wait that timed out, in the words of what the lock protects. */
  lockedError: (owner: LockOwner, timeoutMs: number) => Error;
}

/** Who a lock file names: its pid, and whether that is this very process. */
export interface LockOwner {
  readonly pid: number;
  readonly thisProcess: boolean;
}

/** Matches lock files moved aside by a lock breaker (breakIfStale); captures its pid. */
export const STALE_ASIDE = /\.stale-(\d+)-[0-9a-f]{8}$/;

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
export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const key = resolve(path);
  await turns.take(key, {
    timeoutMs,
    signal: options.signal,
    timedOut: () => options.lockedError({ pid: process.pid, thisProcess: true }, timeoutMs),
    cancelled: () => cancelledError(path),
  });
  try {
    const token = `${process.pid} ${PROCESS_TAG} ${uniqueHex()}${uniqueHex()}`;
    await createLockFile(path, token, deadline, options);
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
  options: LockOptions,
): Promise<void> {
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      await symlink(token, path);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
    }
    const owner = await breakIfStale(path);
    if (options.signal?.aborted) throw cancelledError(path);
    if (Date.now() > deadline && owner !== undefined)
      throw options.lockedError(owner, options.timeoutMs ?? 60_000);
    await new Promise((r) => setTimeout(r, wait));
  }
}

function cancelledError(path: string): FerryError {
  return new FerryError("FERRY_INTERRUPTED", `cancelled while waiting for lock ${path}`);
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
