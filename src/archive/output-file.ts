import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { writeError } from "./errors.ts";

/**
 * Writes a file whole or not at all: into a hidden temp file beside it, fsynced, then renamed
 * over `path`. A failed or interrupted write leaves nothing at `path` (an older file stays).
 */
export async function writeFileAtomically<T>(
  path: string,
  write: (out: Writable) => Promise<T>,
): Promise<T> {
  const temp = join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  const handle = await open(temp, "wx", 0o644).catch((err: unknown) => {
    throw writeError(err, path);
  });
  // flush: fsync before the stream closes the file, so the rename publishes complete data.
  const stream = handle.createWriteStream({ flush: true });
  try {
    const result = await write(stream);
    if (!stream.closed) await finished(stream);
    await rename(temp, path);
    await syncDirectory(dirname(path));
    return result;
  } catch (err) {
    stream.destroy();
    await finished(stream).catch(() => undefined);
    await rm(temp, { force: true });
    throw writeError(err, path);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
