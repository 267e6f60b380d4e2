import { constants } from "node:fs";
import { mkdir, open, realpath, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
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
  /** The mode exactly, whatever the umask (credential files). */
  readonly exactMode?: boolean;
  /** Fsync the file and its directory (default): false for files that are void after a crash anyway. */
  readonly durable?: boolean;
  /** The file's mtime, set before it appears (last-use records are their mtime). */
  readonly mtime?: Date;
  /** Replace a symlinked `path`'s target, not the link (dotfile links survive, as with Docker). */
  readonly followSymlink?: boolean;
}

/**
 * Writes a whole file so that readers see the old content or the new, never a mix, even after
 * kill -9 or power loss: temp file beside it, fsync, rename, fsync of the directory. On failure
 * (a full disk) the temp file goes and the file system's error is thrown as it came.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { mode = 0o644, durable = true, mtime } = options;
  const target = options.followSymlink ? await realpath(path).catch(() => path) : path;
  const tmp = tempPathFor(target);
  try {
    await mkdir(dirname(target), { recursive: true });
    const handle = await open(tmp, "wx", mode);
    try {
      if (options.exactMode) await handle.chmod(mode);
      await handle.writeFile(data);
      if (mtime !== undefined) await handle.utimes(mtime, mtime);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    if (durable) await fsyncDir(dirname(target));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * A file written as a stream, whole or not at all: `write` fills a hidden temp file beside
 * `path` (hidden: it sits in a user's directory for as long as a save takes), fsynced before it
 * closes, then renamed over `path` and the directory fsynced. A failure or a throw removes the
 * temp file; an older file at `path` stays. The file system's error is thrown as it came.
 */
export async function writeStreamAtomic<T>(
  path: string,
  write: (out: Writable) => Promise<T>,
): Promise<T> {
  const temp = tempPathFor(join(dirname(path), `.${basename(path)}`));
  const handle = await open(temp, "wx", 0o644);
  // flush: fsync before the stream closes the file, so the rename publishes complete data.
  const stream = handle.createWriteStream({ flush: true });
  try {
    const result = await write(stream);
    if (!stream.closed) await finished(stream);
    await rename(temp, path);
    await fsyncDir(dirname(path));
    return result;
  } catch (err) {
    stream.destroy();
    await finished(stream).catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

/** A file operation that failed for lack of space (or quota). */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}
