import { dirname } from "node:path";
import {
  type AtomicWriteOptions,
  writeFileAtomic as writeFileAtomicRaw,
  isNoSpace,
} from "../fsx/index.ts";
import { FerryError } from "../observe/index.ts";

/**
 * fsx's atomic write, its failures in the store's words (a full disk is FERRY_DISK_FULL, which
 * disk pressure tracks). `options` as a number is the mode.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions | number = {},
): Promise<void> {
  try {
    await writeFileAtomicRaw(path, data, typeof options === "number" ? { mode: options } : options);
  } catch (err) {
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
