import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { isFerryError } from "../observe/index.ts";
import type { RegistryClient } from "../registry/index.ts";
import { RangeReader } from "./fetch.ts";
import { extractTocJson, parseToc, TOC_NAME, verifyTocDigest } from "./toc.ts";

const LAYER = "sha256:layer";
const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const D = sha("x");

function toc(entries: unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ version: 1, entries }));
}

const bounds = { layer: LAYER, tocOffset: 10_000, blobSize: 10_051 };

function refused(entries: unknown[], pattern: RegExp): void {
  assert.throws(
    () => parseToc(toc(entries), bounds),
    (err: unknown) =>
      isFerryError(err, "FERRY_ARCHIVE_INVALID") && pattern.test((err as Error).message),
  );
}

describe("parseToc", () => {
  it("parses entries, cleans names and joins chunks to their file", () => {
    const parsed = parseToc(
      toc([
        { name: "./etc/", type: "dir", mode: 0o755 },
        { name: "etc/big", type: "reg", size: 10, offset: 100, chunkSize: 6, chunkDigest: D },
        { name: "etc/big", type: "chunk", offset: 200, chunkOffset: 6, chunkDigest: D },
        { name: "etc/l", type: "symlink", linkName: "big" },
        { name: "etc/h", type: "hardlink", linkName: "./etc/big" },
      ]),
      bounds,
    );
    assert.deepEqual(
      parsed.entries.map((e) => e.path),
      ["etc", "etc/big", "etc/l", "etc/h"],
    );
    const big = parsed.entries[1];
    assert.deepEqual(
      big?.chunks.map((c) => [c.offset, c.end, c.chunkOffset, c.size]),
      [
        [100, 200, 0, 6],
        [200, 10_000, 6, 4],
      ],
    );
    assert.equal(parsed.entries[3]?.linkName, "etc/big");
  });

  it("refuses an offset outside the blob", () => {
    refused(
      [{ name: "a", type: "reg", size: 1, offset: 20_000, chunkDigest: D }],
      /outside the blob/,
    );
  });

  it("refuses overlapping chunks", () => {
    refused(
      [
        { name: "a", type: "reg", size: 1, offset: 100, chunkDigest: D },
        { name: "b", type: "reg", size: 1, offset: 100, chunkDigest: D },
      ],
      /overlap/,
    );
    refused(
      [
        { name: "a", type: "reg", size: 10, offset: 100, chunkSize: 6, chunkDigest: D },
        { name: "a", type: "chunk", offset: 200, chunkOffset: 4, chunkDigest: D },
      ],
      /overlap or leave a gap/,
    );
  });

  it("refuses paths that escape the root, and absolute paths", () => {
    refused([{ name: "../../etc/passwd", type: "reg", size: 0 }], /escapes the root/);
    refused([{ name: "a/../../b", type: "dir" }], /escapes the root/);
    refused([{ name: "/etc/passwd", type: "reg", size: 0 }], /absolute/);
    refused([{ name: "h", type: "hardlink", linkName: "../x" }], /escapes the root/);
  });

  it("refuses absurd sizes", () => {
    refused([{ name: "a", type: "reg", size: 2 ** 50, offset: 1, chunkDigest: D }], /absurd size/);
    refused([{ name: "a", type: "reg", size: 2 ** 30, offset: 1, chunkDigest: D }], /absurd size/);
    refused([{ name: "a", type: "reg", size: -1 }], /not a non-negative integer/);
    refused(
      [{ name: "a", type: "reg", size: 5, offset: 1, chunkSize: 9, chunkDigest: D }],
      /outside the file/,
    );
  });

  it("refuses chunks without a digest, unknown types and non-JSON", () => {
    refused([{ name: "a", type: "reg", size: 5, offset: 1 }], /chunkDigest/);
    refused([{ name: "a", type: "socket" }], /unknown type/);
    refused([{ name: "a", type: "chunk", offset: 1, chunkDigest: D }], /does not follow its file/);
    assert.throws(() => parseToc(Buffer.from("{"), bounds), /not JSON/);
  });
});

describe("extractTocJson and verifyTocDigest", () => {
  const json = toc([{ name: "a", type: "dir" }]);
  const header = Buffer.alloc(512);
  header.write(TOC_NAME, 0);
  header.write(`${json.length.toString(8).padStart(11, "0")}\0`, 124);
  const member = gzipSync(
    Buffer.concat([header, json, Buffer.alloc(512 - (json.length % 512)), Buffer.alloc(1024)]),
  );

  it("takes the TOC out of its tar and checks it against the annotation", () => {
    const out = extractTocJson(member, LAYER);
    assert.deepEqual(out, json);
    verifyTocDigest(out, sha(json), LAYER);
    assert.throws(
      () => verifyTocDigest(out, sha("other"), LAYER),
      (e: unknown) => isFerryError(e, "FERRY_DIGEST_MISMATCH"),
    );
    assert.throws(
      () => verifyTocDigest(out, undefined, LAYER),
      /no containerd.io\/snapshot\/stargz\/toc.digest/,
    );
  });

  it("refuses a TOC member that is not gzip", () => {
    assert.throws(() => extractTocJson(Buffer.from("nope"), LAYER), /not valid gzip/);
  });
});

describe("RangeReader.chunk", () => {
  const data = Buffer.from("chunk payload");
  const reader = (body: Buffer) =>
    new RangeReader({
      registry: {
        request: async () => ({
          status: 206,
          // A range answer names the bytes it holds (RegistrySource refuses any other).
          headers: { "content-range": "bytes 0-99/1000" },
          body: Readable.from([body]),
          url: "",
        }),
      } as unknown as RegistryClient,
      repository: { domain: "127.0.0.1:1", path: "x" },
      digest: LAYER,
      size: 1000,
    });
  const chunk = {
    offset: 0,
    end: 100,
    innerOffset: 0,
    chunkOffset: 0,
    size: data.length,
    digest: sha(data),
  };

  it("returns a chunk whose digest matches and counts the bytes fetched", async () => {
    const gz = gzipSync(data);
    const r = reader(gz);
    assert.deepEqual(await r.chunk(chunk, "f"), data);
    assert.equal(r.fetched, gz.length);
  });

  it("refuses a chunk whose bytes do not match its chunkDigest", async () => {
    await assert.rejects(
      reader(gzipSync(Buffer.from("chunk pAyload"))).chunk(chunk, "f"),
      (e: unknown) =>
        isFerryError(e, "FERRY_DIGEST_MISMATCH") &&
        /does not match its chunkDigest/.test((e as Error).message),
    );
  });
});
