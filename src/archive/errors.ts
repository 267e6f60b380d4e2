import { FerryError } from "../observe/index.ts";

const DEFAULT_HINT =
  "the archive is damaged or unsafe; nothing was recorded in the store — write it again (ferry save, docker save, skopeo copy … oci-archive:…)";

/** A refused archive: says which archive, what is wrong and, when known, in which entry. */
export function archiveInvalid(
  source: string,
  problem: string,
  options: { entry?: string; hint?: string; cause?: unknown } = {},
): FerryError {
  const where = options.entry === undefined ? "" : `entry "${options.entry}": `;
  return new FerryError("FERRY_ARCHIVE_INVALID", `archive ${source}: ${where}${problem}`, {
    hint: options.hint ?? DEFAULT_HINT,
    cause: options.cause,
    fields: { archive: source, ...(options.entry === undefined ? {} : { entry: options.entry }) },
  });
}

/** A file operation that failed while writing: disk full is its own error, the rest name the path. */
export function writeError(err: unknown, path: string): FerryError {
  if (err instanceof FerryError) return err;
  const code = (err as { code?: string } | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new FerryError("FERRY_DISK_FULL", `no space left on the device holding ${path}`, {
      hint: "free space or write elsewhere; the incomplete file was removed",
      cause: err,
      fields: { path },
    });
  }
  return new FerryError("FERRY_STORE_IO", `cannot write ${path} (${code ?? String(err)})`, {
    hint: "check the directory exists and is writable",
    cause: err,
    fields: { path },
  });
}
