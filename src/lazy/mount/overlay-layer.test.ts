import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OPAQUE_XATTR, overlayLayerEntries } from "./overlay-layer.ts";
import { buildTree, type FsNode, type MountEntry } from "./tree.ts";

function entry(path: string, type: MountEntry["type"]): MountEntry {
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
  };
}

function at(root: FsNode, path: string): FsNode | undefined {
  let node: FsNode | undefined = root;
  for (const name of path.split("/")) node = node?.children?.get(name);
  return node;
}

describe("overlayLayerEntries", () => {
  it("turns a whiteout into the 0/0 character device overlayfs reads as a deletion", () => {
    const tree = buildTree([
      overlayLayerEntries([
        entry("etc", "dir"),
        entry("etc/.wh.motd", "reg"),
        entry(".wh.tmp", "reg"),
      ]),
    ]);
    for (const path of ["etc/motd", "tmp"]) {
      const node = at(tree.root, path);
      assert.equal(node?.type, "char", path);
      assert.equal(node?.devMajor, 0);
      assert.equal(node?.devMinor, 0);
    }
    assert.equal(at(tree.root, "etc/.wh.motd"), undefined);
  });

  it("marks an opaque directory with trusted.overlay.opaque=y, listed by the layer or not", () => {
    const tree = buildTree([
      overlayLayerEntries([
        entry("var", "dir"),
        entry("var/.wh..wh..opq", "reg"),
        entry("var/new", "reg"),
        entry("opt/sub/.wh..wh..opq", "reg"),
      ]),
    ]);
    assert.equal(at(tree.root, "var")?.xattrs.get(OPAQUE_XATTR)?.toString(), "y");
    assert.equal(at(tree.root, "opt/sub")?.xattrs.get(OPAQUE_XATTR)?.toString(), "y");
    assert.equal(at(tree.root, "opt")?.xattrs.has(OPAQUE_XATTR), false);
    assert.equal(at(tree.root, "var/new")?.type, "reg");
    assert.equal(at(tree.root, "var/.wh..wh..opq"), undefined);
  });

  it("leaves a layer without whiteouts as it is", () => {
    const entries = [entry("bin", "dir"), entry("bin/sh", "reg")];
    assert.deepEqual(overlayLayerEntries(entries), entries);
  });
});
