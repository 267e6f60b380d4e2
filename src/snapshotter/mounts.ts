// What containerd mounts for a snapshot, as the overlay snapshotter lays it out: a snapshot's
// own files in DIR/fs (a lazy layer's FUSE mount is there too), overlay's scratch in DIR/work.
import type { Snapshot } from "./table.ts";

/** containerd.types.Mount */
export interface Mount {
  readonly type: string;
  readonly source: string;
  readonly target: string;
  readonly options: readonly string[];
}

/** The mounts of `snapshot`, whose parents are given nearest first; `fs(s)` is a snapshot's files. */
export function mountsOf(
  snapshot: Snapshot,
  parents: readonly Snapshot[],
  dirs: { fs(s: Snapshot): string; work(s: Snapshot): string },
): Mount[] {
  const bind = (source: string, mode: "ro" | "rw"): Mount[] => [
    { type: "bind", source, target: "", options: [mode, "rbind"] },
  ];
  const lower = `lowerdir=${parents.map((p) => dirs.fs(p)).join(":")}`;
  if (snapshot.kind === "active") {
    if (parents.length === 0) return bind(dirs.fs(snapshot), "rw");
    const options = [`workdir=${dirs.work(snapshot)}`, `upperdir=${dirs.fs(snapshot)}`, lower];
    return [{ type: "overlay", source: "overlay", target: "", options }];
  }
  // A view has nothing of its own to write: its parents are all it shows.
  const [only] = parents;
  if (only === undefined) return bind(dirs.fs(snapshot), "ro");
  if (parents.length === 1) return bind(dirs.fs(only), "ro");
  return [{ type: "overlay", source: "overlay", target: "", options: [lower] }];
}
