/** Tar entry names: what an archive may name, and where an entry lives inside the archive root. Pure. */
import { posix } from "node:path";

export type PathCheck = { ok: true; path: string } | { ok: false; problem: string };

/**
 * Normalizes an entry name to a relative POSIX path ("./a//b" → "a/b"; the root is "").
 * Absolute names and any ".." segment are refused, even one that would stay inside:
 * image archives never need them, and refusing is simpler to reason about than resolving.
 */
export function normalizeEntryPath(name: string): PathCheck {
  if (name.includes("\0")) return { ok: false, problem: "its name contains a NUL byte" };
  if (name.startsWith("/")) return { ok: false, problem: "it is an absolute path" };
  const segments = name.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) return { ok: false, problem: "it escapes the archive root (..)" };
  return { ok: true, path: segments.join("/") };
}

/**
 * Where a symbolic link inside the archive points, relative to the root. Only the links
 * `docker save` (before Docker 25) writes are accepted: `<id>/layer.tar` → `../<id2>/layer.tar`,
 * which it uses for a layer that two images share at different positions.
 */
export function legacyLayerLinkTarget(path: string, linkname: string): PathCheck {
  if (!isLegacyLayerPath(path)) {
    return { ok: false, problem: "it is a symbolic link (only <id>/layer.tar links are allowed)" };
  }
  if (linkname.startsWith("/")) {
    return { ok: false, problem: `it is a symbolic link to an absolute path (${linkname})` };
  }
  const target = posix.normalize(posix.join(posix.dirname(path), linkname));
  if (target === path || target.startsWith("../") || !isLegacyLayerPath(target)) {
    return {
      ok: false,
      problem: `it is a symbolic link to ${linkname}, which is not another <id>/layer.tar in the archive`,
    };
  }
  return { ok: true, path: target };
}

function isLegacyLayerPath(path: string): boolean {
  const parts = path.split("/");
  return parts.length === 2 && parts[1] === "layer.tar" && /^[A-Za-z0-9._-]+$/.test(parts[0] ?? "");
}

const BLOB_PATH = /^blobs\/sha256\/([a-f0-9]{64})$/;

/** The digest an OCI layout path names (`blobs/sha256/<hex>`), or undefined for other paths. */
export function blobPathDigest(path: string): string | undefined {
  const hex = BLOB_PATH.exec(path)?.[1];
  return hex === undefined ? undefined : `sha256:${hex}`;
}

/** True for paths under blobs/ that do not name a sha256 blob (other algorithms, bad names). */
export function isMisnamedBlobPath(path: string): boolean {
  return path.startsWith("blobs/") && path.split("/").length === 3 && !BLOB_PATH.test(path);
}

export function blobPathOf(digest: string): string {
  return `blobs/sha256/${digest.slice(digest.indexOf(":") + 1)}`;
}
