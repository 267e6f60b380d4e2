import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orderEntries, priorityPath } from "./convert-order.ts";
import type { TarEntry } from "./convert-tar.ts";

function entry(path: string, type: TarEntry["type"] = "reg", linkName?: string): TarEntry {
  return {
    path,
    type,
    size: 0,
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    mtime: 0,
    linkName,
    devMajor: 0,
    devMinor: 0,
    xattrs: undefined,
    start: 0,
    dataStart: 512,
  };
}

const names = (list: readonly TarEntry[]) => list.map((e) => e.path);

describe("orderEntries", () => {
  const layer = [
    entry("etc", "dir"),
    entry("etc/a"),
    entry("etc/h", "hardlink", "etc/a"),
    entry("usr", "dir"),
    entry("usr/bin", "dir"),
    entry("usr/bin/x"),
    entry("usr/bin/y"),
    entry("stargz.index.json"),
    entry(".no.prefetch.landmark"),
  ];

  it("puts prioritized files first, after their directories and hard-link targets", () => {
    const o = orderEntries(layer, ["/usr/bin/x", "etc/h", "/not/here"]);
    assert.deepEqual(names(o.first), ["usr", "usr/bin", "usr/bin/x", "etc", "etc/a", "etc/h"]);
    assert.deepEqual(names(o.rest), ["usr/bin/y"]);
    assert.deepEqual(o.found, ["usr/bin/x", "etc/h"]);
  });

  it("keeps the source order without priorities, dropping entries the converter writes itself", () => {
    const o = orderEntries(layer, []);
    assert.deepEqual(o.first, []);
    assert.deepEqual(names(o.rest), names(layer).slice(0, 7));
  });

  it("reads trace paths the way a mount records them", () => {
    assert.equal(priorityPath("/usr/lib/x.so\n"), "usr/lib/x.so");
    assert.equal(priorityPath("./etc/"), "etc");
    assert.equal(priorityPath("/a/../b"), "b");
  });

  it("stops following a hard-link cycle", () => {
    const o = orderEntries([entry("a", "hardlink", "b"), entry("b", "hardlink", "a")], ["a"]);
    assert.deepEqual(names(o.first).sort(), ["a", "b"]);
  });
});
