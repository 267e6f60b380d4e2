import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../../observe/index.ts";
import type { Chunk } from "../toc.ts";
import { buildTree, type FsNode, type MountEntry, statMode } from "./tree.ts";

function entry(
  path: string,
  type: MountEntry["type"],
  extra: Partial<MountEntry> = {},
): MountEntry {
  return {
    path,
    type,
    size: 0,
    mode: type === "dir" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    linkName: undefined,
    digest: undefined,
    chunks: [],
    mtime: 1_700_000_000,
    xattrs: new Map(),
    devMajor: 0,
    devMinor: 0,
    ...extra,
  };
}

function at(root: FsNode, path: string): FsNode | undefined {
  let node: FsNode | undefined = root;
  for (const name of path.split("/")) node = node?.children?.get(name);
  return node;
}

const chunk: Chunk = {
  offset: 0,
  end: 10,
  innerOffset: 0,
  chunkOffset: 0,
  size: 3,
  digest: "sha256:x",
};

describe("buildTree", () => {
  it("applies whiteouts and opaque directories of upper layers to the layers below", () => {
    const { root } = buildTree([
      [
        entry("a", "dir"),
        entry("a/old", "reg"),
        entry("gone", "dir"),
        entry("gone/f", "reg"),
        entry("o", "dir"),
        entry("o/lower", "reg"),
      ],
      [
        entry("a/.wh.old", "reg"),
        entry(".wh.gone", "reg"),
        entry("o", "dir", { mode: 0o700 }),
        entry("o/.wh..wh..opq", "reg"),
        entry("o/upper", "reg"),
        entry(".prefetch.landmark", "reg"),
      ],
    ]);
    assert.deepEqual([...(root.children?.keys() ?? [])].sort(), ["a", "o"]);
    assert.deepEqual([...(at(root, "a")?.children?.keys() ?? [])], []);
    assert.deepEqual([...(at(root, "o")?.children?.keys() ?? [])], ["upper"]);
    assert.equal(at(root, "o")?.mode, 0o700);
  });

  it("replaces a file by an upper layer's file, keeping the upper content", () => {
    const { root } = buildTree([
      [entry("f", "reg", { size: 3, chunks: [chunk] })],
      [entry("f", "reg", { size: 3, chunks: [{ ...chunk, offset: 5 }], uid: 9 })],
    ]);
    const f = at(root, "f");
    assert.equal(f?.content?.layer, 1);
    assert.equal(f?.uid, 9);
  });

  it("gives hard links one inode with the link count and the link's attributes", () => {
    const tree = buildTree([
      [
        entry("d", "dir"),
        entry("d/a", "reg", { size: 3, chunks: [chunk], mode: 0o600, uid: 5 }),
        entry("d/b", "hardlink", { linkName: "d/a", mode: 0o640, uid: 6 }),
        entry("d/sub", "dir"),
      ],
    ]);
    const a = at(tree.root, "d/a");
    assert.equal(a, at(tree.root, "d/b"));
    assert.equal(a?.nlink, 2);
    assert.equal(a?.uid, 6);
    assert.equal(statMode(a as FsNode), 0o100640);
    assert.equal(at(tree.root, "d")?.nlink, 3);
    assert.equal(new Set(tree.nodes.slice(1)).size, tree.nodes.length - 1, "one inode number each");
    assert.equal(tree.nodes[a?.ino ?? 0], a);
  });

  it("refuses a hard link to a file the image does not have", () => {
    assert.throws(
      () => buildTree([[entry("b", "hardlink", { linkName: "nowhere" })]]),
      (err: unknown) =>
        isFerryError(err, "FERRY_ARCHIVE_INVALID") && /hard link "b"/.test(String(err)),
    );
  });

  it("creates parent directories a layer leaves out, and keeps devices and symlinks", () => {
    const { root } = buildTree([
      [
        entry("x/y/dev", "char", { devMajor: 1, devMinor: 3, mode: 0o666 }),
        entry("x/l", "symlink", { linkName: "../target" }),
      ],
    ]);
    const dev = at(root, "x/y/dev");
    assert.equal(statMode(dev as FsNode), 0o020666);
    assert.equal(dev?.devMajor, 1);
    assert.equal(at(root, "x/l")?.linkName, "../target");
    assert.equal(at(root, "x/l")?.size, 9);
    assert.equal(at(root, "x/y")?.type, "dir");
  });
});

describe("prefetchRuns", () => {
  const c = (offset: number, end: number, digest: string): Chunk => ({
    offset,
    end,
    innerOffset: 0,
    chunkOffset: 0,
    size: 1,
    digest,
  });
  it("joins chunks that lie back to back in a layer into one range, up to a size", async () => {
    const { prefetchRuns } = await import("./mount.ts");
    const files = [
      { layer: 0, entry: entry("b", "reg", { size: 1, chunks: [c(10, 20, "b")] }) },
      { layer: 0, entry: entry("a", "reg", { size: 1, chunks: [c(0, 10, "a")] }) },
      { layer: 0, entry: entry("far", "reg", { size: 1, chunks: [c(50, 60, "far")] }) },
      { layer: 1, entry: entry("x", "reg", { size: 1, chunks: [c(0, 10, "x")] }) },
      { layer: 0, entry: entry("next", "reg", { size: 1, chunks: [c(60, 95, "next")] }) },
    ];
    const runs = prefetchRuns(files, 40).map((r) => ({
      layer: r.layer,
      digests: r.items.map((i) => i.chunk.digest),
    }));
    assert.deepEqual(runs, [
      { layer: 0, digests: ["a", "b"] },
      { layer: 0, digests: ["far"] },
      { layer: 0, digests: ["next"] },
      { layer: 1, digests: ["x"] },
    ]);
  });

  it("streams a chunk whose compressed span exceeds a run on its own, never buffering it", async () => {
    const { prefetchRuns } = await import("./mount.ts");
    const files = [
      { layer: 0, entry: entry("a", "reg", { size: 1, chunks: [c(0, 10, "a")] }) },
      { layer: 0, entry: entry("huge", "reg", { size: 1, chunks: [c(10, 500, "huge")] }) },
      { layer: 0, entry: entry("b", "reg", { size: 1, chunks: [c(500, 510, "b")] }) },
      { layer: 0, entry: entry("c", "reg", { size: 1, chunks: [c(510, 520, "c")] }) },
    ];
    const runs = prefetchRuns(files, 40).map((r) => ({
      digests: r.items.map((i) => i.chunk.digest),
      stream: r.stream,
    }));
    assert.deepEqual(runs, [
      { digests: ["a"], stream: false },
      { digests: ["huge"], stream: true },
      { digests: ["b", "c"], stream: false },
    ]);
  });
});
