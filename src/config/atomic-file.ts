/** Whole-file replacement that readers see as old or new, never half, even after a crash. */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, realpath, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Writes `data` to a temp file beside `path` (following a symlinked `path` to
 * its target, as Docker does, so dotfile links survive), fsyncs it, renames
 * it over the target and fsyncs the directory.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const target = await realpath(path).catch(() => path);
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const handle = await open(tmp, "wx", mode);
    try {
      await handle.chmod(mode); // exact mode, whatever the umask
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDirectory(dirname(target));
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
