import { constants } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FerryError } from "../observe/index.ts";
import { uniqueHex } from "./unique.ts";

/** A temp-file name beside `path` that names its writer, so leftovers of dead processes can be recognised. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}-${uniqueHex()}`;
}

/** Matches names made by tempPathFor; captures the writer's pid. */
export const TEMP_NAME = /\.tmp-(\d+)-[0-9a-f]{8}$/;

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface AtomicWriteOptions {
  /** Default 0o644. */
  readonly mode?: number;
  /** Fsync the file and its directory (default): false for files that are void after a crash anyway. */
  readonly durable?: boolean;
  /** The file's mtime, set before it appears (last-use records are their mtime). */
  readonly mtime?: Date;
}

/**
 * Writes a whole file so that readers see the old content or the new, never a mix, even after
 * kill -9 or power loss. On failure (a full disk) the temp file goes: nothing half-written stays.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions | number = {},
): Promise<void> {
  const {
    mode = 0o644,
    durable = true,
    mtime,
  } = typeof options === "number" ? { mode: options } : options;
  const tmp = tempPathFor(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(tmp, "wx", mode);
    try {
      await handle.writeFile(data);
      if (mtime !== undefined) await handle.utimes(mtime, mtime);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    if (durable) await fsyncDir(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw diskError(err, path);
  }
}

/** Turns a failed file operation into a FerryError that says what to do (ENOSPC → FERRY_DISK_FULL). */
export function diskError(err: unknown, path: string): FerryError {
  const code = (err as { code?: string } | null)?.code;
  if (isNoSpace(err)) {
    return new FerryError(
      "FERRY_DISK_FULL",
      `no space left on the device holding ${dirname(path)}`,
      {
        hint: "run `ferry prune` (it removes interrupted downloads and unused blobs; `ferry df` shows them), free space on that filesystem, or point --store at a larger one; nothing partial was recorded",
        cause: err,
        fields: { path },
      },
    );
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new FerryError("FERRY_STORE_CORRUPT", `cannot write ${path} (${code})`, {
      hint: "check the store directory's permissions, or choose another with --store / FERRY_STORE",
      cause: err,
      fields: { path },
    });
  }
  if (err instanceof FerryError) return err;
  return new FerryError("FERRY_STORE_IO", `cannot write ${path} (${code ?? String(err)})`, {
    hint: "check the filesystem holding the store (dmesg may say more)",
    cause: err,
    fields: { path },
  });
}

/** A file operation that failed for lack of space (or quota). */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

export function joinAll(root: string, ...parts: string[]): string {
  return join(root, ...parts);
}
