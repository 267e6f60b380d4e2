import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  blobPathDigest,
  isMisnamedBlobPath,
  legacyLayerLinkTarget,
  normalizeEntryPath,
} from "./entry-path.ts";

const HEX = "a".repeat(64);

describe("normalizeEntryPath", () => {
  it("normalizes ./, doubled slashes and trailing slashes", () => {
    assert.deepEqual(normalizeEntryPath("./blobs//sha256/x"), { ok: true, path: "blobs/sha256/x" });
    assert.deepEqual(normalizeEntryPath("blobs/"), { ok: true, path: "blobs" });
    assert.deepEqual(normalizeEntryPath("./"), { ok: true, path: "" });
  });

  it("refuses absolute names, any .. segment and NUL bytes", () => {
    for (const name of ["/etc/passwd", "../escape", "a/../../b", "a/../b", "..", "a\0b"]) {
      const checked = normalizeEntryPath(name);
      assert.equal(checked.ok, false, name);
    }
    assert.match((normalizeEntryPath("/x") as { problem: string }).problem, /absolute/);
    assert.match((normalizeEntryPath("../x") as { problem: string }).problem, /escapes/);
  });
});

describe("legacyLayerLinkTarget", () => {
  it("accepts docker save's links between <id>/layer.tar files", () => {
    assert.deepEqual(legacyLayerLinkTarget("b1/layer.tar", "../a1/layer.tar"), {
      ok: true,
      path: "a1/layer.tar",
    });
  });

  it("refuses every other link", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["manifest.json", "../x", /only <id>\/layer\.tar links/],
      [`blobs/sha256/${HEX}`, "/etc/passwd", /only/],
      ["b1/layer.tar", "/etc/passwd", /absolute/],
      ["b1/layer.tar", "../../etc/layer.tar", /not another/],
      ["b1/layer.tar", "../a1/json", /not another/],
      ["b1/layer.tar", "layer.tar", /not another/],
    ];
    for (const [path, link, why] of cases) {
      const checked = legacyLayerLinkTarget(path, link);
      assert.equal(checked.ok, false, `${path} -> ${link}`);
      assert.match((checked as { problem: string }).problem, why);
    }
  });
});

describe("blob paths", () => {
  it("reads digests from blobs/sha256/<hex> only", () => {
    assert.equal(blobPathDigest(`blobs/sha256/${HEX}`), `sha256:${HEX}`);
    assert.equal(blobPathDigest(`blobs/sha256/${HEX.toUpperCase()}`), undefined);
    assert.equal(blobPathDigest("manifest.json"), undefined);
    assert.equal(isMisnamedBlobPath(`blobs/sha512/${HEX}`), true);
    assert.equal(isMisnamedBlobPath("blobs/sha256/short"), true);
    assert.equal(isMisnamedBlobPath(`blobs/sha256/${HEX}`), false);
    assert.equal(isMisnamedBlobPath("other/file"), false);
  });
});
