// What a mount refuses before serving anything: TOC fields the read side would trust
// with memory or device numbers (parseToc's own checks are tested in toc.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../../observe/index.ts";
import { MAX_MEMBER_SPAN_BYTES, parseToc } from "../toc.ts";
import { parseExtras } from "./image.ts";

const LAYER = "sha256:layer";
const D = `sha256:${"0".repeat(64)}`;
const json = (entries: unknown[]) => Buffer.from(JSON.stringify({ version: 1, entries }));
const invalid = (pattern: RegExp) => (err: unknown) =>
  isFerryError(err, "FERRY_ARCHIVE_INVALID") && pattern.test((err as Error).message);

describe("hostile TOCs", () => {
  it("refuses an innerOffset that would make a reader decompress without bound", () => {
    const entries = [
      { name: "f", type: "reg", size: 4, offset: 10, innerOffset: 2 ** 40, chunkDigest: D },
    ];
    assert.throws(
      () => parseToc(json(entries), { layer: LAYER, tocOffset: 1000, blobSize: 1051 }),
      invalid(/absurd innerOffset/),
    );
  });

  it("refuses a member whose compressed span would be held in memory without bound", () => {
    const entries = [
      { name: "f", type: "reg", size: 4, offset: 10, chunkDigest: D },
      { name: "g", type: "reg", size: 4, offset: 20 + 2 ** 30, chunkDigest: D },
    ];
    // f's member reaches to where g's starts: a gigabyte for 4 bytes.
    assert.throws(
      () => parseToc(json(entries), { layer: LAYER, tocOffset: 2 ** 31, blobSize: 2 ** 31 + 51 }),
      invalid(/"f" at offset 10 spans \d+ compressed bytes/),
    );
    // The last member reaches to the TOC: the same bound applies.
    assert.throws(
      () =>
        parseToc(json(entries.slice(0, 1)), {
          layer: LAYER,
          tocOffset: 2 ** 31,
          blobSize: 2 ** 31 + 51,
        }),
      invalid(/spans \d+ compressed bytes/),
    );
    const near = parseToc(json(entries.slice(0, 1)), {
      layer: LAYER,
      tocOffset: 10 + MAX_MEMBER_SPAN_BYTES,
      blobSize: 10 + MAX_MEMBER_SPAN_BYTES + 51,
    });
    assert.equal(near.entries[0]?.chunks[0]?.end, 10 + MAX_MEMBER_SPAN_BYTES);
  });

  it("refuses out-of-range device numbers and oversized xattrs", () => {
    assert.throws(
      () => parseExtras(json([{ name: "d", type: "char", devMajor: -1 }]), LAYER),
      invalid(/devMajor is not a device number/),
    );
    const big = Buffer.alloc(65 * 1024).toString("base64");
    assert.throws(
      () => parseExtras(json([{ name: "f", type: "reg", xattrs: { "user.x": big } }]), LAYER),
      invalid(/absurd xattr/),
    );
  });

  it("refuses names escaping the root in the fields it reads itself", () => {
    assert.throws(
      () => parseExtras(json([{ name: "../etc", type: "dir" }]), LAYER),
      invalid(/\.\./),
    );
  });

  it("reads mtimes, xattrs and device numbers", () => {
    const extras = parseExtras(
      json([
        {
          name: "./dev/null",
          type: "char",
          devMajor: 1,
          devMinor: 3,
          modtime: "2024-02-03T04:05:06Z",
          xattrs: { "user.k": Buffer.from("v").toString("base64") },
        },
      ]),
      LAYER,
    );
    const e = extras.get("dev/null");
    assert.equal(e?.devMajor, 1);
    assert.equal(e?.devMinor, 3);
    assert.equal(e?.mtime, Date.parse("2024-02-03T04:05:06Z") / 1000);
    assert.equal(e?.xattrs.get("user.k")?.toString(), "v");
  });
});
