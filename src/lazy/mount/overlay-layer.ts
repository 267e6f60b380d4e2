// One eStargz layer as an overlayfs lower directory: its whiteouts become what overlayfs reads
// as deletions (a 0/0 character device, and trusted.overlay.opaque=y on an opaque directory)
// instead of being applied, since the layers below are other mounts. Pure: entries in, entries out.
import { posix } from "node:path";
import { IMPLICIT_DIR } from "../toc.ts";
import type { MountEntry } from "./tree.ts";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";
export const OPAQUE_XATTR = "trusted.overlay.opaque";

export function overlayLayerEntries(entries: readonly MountEntry[]): MountEntry[] {
  const opaque = new Set<string>();
  const out: MountEntry[] = [];
  for (const e of entries) {
    const dir = posix.dirname(e.path) === "." ? "" : posix.dirname(e.path);
    const name = posix.basename(e.path);
    if (name === OPAQUE) opaque.add(dir);
    else if (name.startsWith(WHITEOUT)) {
      const path =
        dir === "" ? name.slice(WHITEOUT.length) : `${dir}/${name.slice(WHITEOUT.length)}`;
      out.push({ ...e, path, type: "char", devMajor: 0, devMinor: 0, chunks: [], size: 0 });
    } else out.push(e);
  }
  if (opaque.size === 0) return out;
  const marked = (e: MountEntry): MountEntry =>
    e.type === "dir" && opaque.has(e.path)
      ? { ...e, xattrs: new Map([...e.xattrs, [OPAQUE_XATTR, Buffer.from("y")]]) }
      : e;
  const result = out.map(marked);
  // An opaque directory the layer does not list itself still needs its mark.
  const listed = new Set(result.filter((e) => e.type === "dir").map((e) => e.path));
  for (const dir of opaque)
    if (!listed.has(dir))
      result.unshift(marked({ ...IMPLICIT_MOUNT_DIR, path: dir, xattrs: new Map() }));
  return result;
}

const IMPLICIT_MOUNT_DIR: Omit<MountEntry, "path" | "xattrs"> = {
  ...IMPLICIT_DIR,
  mtime: 0,
  devMajor: 0,
  devMinor: 0,
};
