import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { ustarHeader } from "./convert-tar.ts";
import { EstargzWriter, type EntryMeta, footer, PREFETCH_LANDMARK } from "./estargz-writer.ts";
import { FOOTER_SIZE, parseFooter } from "./footer.ts";
import { extractTocJson, parseToc } from "./toc.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function file(path: string, size: number): EntryMeta {
  return { path, type: "reg", size, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
}

function content(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Writes the files (a landmark after the first) with chunks of `chunkSize`; returns the blob and result. */
async function write(files: Array<[string, Buffer]>, chunkSize: number) {
  const parts: Buffer[] = [];
  const writer = new EstargzWriter(
    async (b) => {
      parts.push(b);
    },
    { chunkSize },
  );
  for (const [i, [path, bytes]] of files.entries()) {
    await writer.add(file(path, bytes.length), ustarHeader(path, bytes.length), async (s, e) =>
      bytes.subarray(s, e),
    );
    if (i === 0) await writer.addLandmark(PREFETCH_LANDMARK);
  }
  const result = await writer.finish();
  return { blob: Buffer.concat(parts), result };
}

async function tarEntries(raw: Buffer): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on("data", (b: unknown) => {
        parts.push(b as Buffer);
      });
      stream.on("end", () => {
        out.push([header.name, Buffer.concat(parts)]);
        next();
      });
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  extract.end(raw);
  await done;
  return out;
}

describe("footer", () => {
  it("is the 51-byte empty gzip member the reader parses back", () => {
    const f = footer(0x1234abcd);
    assert.equal(f.length, FOOTER_SIZE);
    assert.equal(gunzipSync(f).length, 0);
    assert.deepEqual(parseFooter(f), { tocOffset: 0x1234abcd, size: FOOTER_SIZE });
    assert.equal(f.toString("latin1", 16, 38), "000000001234abcdSTARGZ");
  });
});

describe("EstargzWriter", () => {
  const small = content(1, 10);
  const big = content(2, 2500);
  const files: Array<[string, Buffer]> = [
    ["a", small],
    ["b", big],
    ["c", Buffer.alloc(0)],
  ];

  it("writes a TOC whose digest, offsets and chunks the reader accepts", async () => {
    const { blob, result } = await write(files, 1000);
    assert.equal(blob.length, result.size);
    const f = parseFooter(blob.subarray(blob.length - FOOTER_SIZE));
    assert.equal(f?.tocOffset, result.tocOffset);
    const json = extractTocJson(blob.subarray(result.tocOffset, blob.length - FOOTER_SIZE), "l");
    assert.equal(sha(json), result.tocDigest);
    const toc = parseToc(json, { layer: "l", tocOffset: result.tocOffset, blobSize: blob.length });
    assert.deepEqual(
      toc.entries.map((e) => e.path),
      ["a", PREFETCH_LANDMARK, "b", "c"],
    );
    const b = toc.entries.find((e) => e.path === "b");
    assert.ok(b);
    assert.equal(b.digest, sha(big));
    assert.deepEqual(
      b.chunks.map((c) => [c.chunkOffset, c.size]),
      [
        [0, 1000],
        [1000, 1000],
        [2000, 500],
      ],
    );
    for (const c of b.chunks) {
      // Each chunk starts a gzip member of its own, its bytes first.
      const piece = gunzipSync(blob.subarray(c.offset, c.end)).subarray(0, c.size);
      assert.deepEqual(piece, big.subarray(c.chunkOffset, c.chunkOffset + c.size));
      assert.equal(c.digest, sha(piece));
      assert.equal(c.innerOffset, 0);
    }
    assert.deepEqual(toc.entries.find((e) => e.path === "c")?.chunks, []);
  });

  it("writes chunkSize on every chunk but a shorter last one, as the reference writer does", async () => {
    const { blob, result } = await write(files, 1000);
    const json = extractTocJson(blob.subarray(result.tocOffset, blob.length - FOOTER_SIZE), "l");
    const raw = JSON.parse(json.toString()) as {
      version: number;
      entries: Array<Record<string, unknown>>;
    };
    assert.equal(raw.version, 1);
    const pieces = raw.entries.filter((e) => e["name"] === "b");
    assert.deepEqual(
      pieces.map((e) => [e["type"], e["chunkSize"]]),
      [
        ["reg", 1000],
        ["chunk", 1000],
        ["chunk", undefined],
      ],
    );
    assert.equal(raw.entries[0]?.["modtime"], "2023-11-14T22:13:20Z");
  });

  it("is one gzip stream holding a tar of the entries, the TOC last; diff_id and size are its own", async () => {
    const { blob, result } = await write(files, 1000);
    const raw = gunzipSync(blob);
    assert.equal(raw.length, result.uncompressedSize);
    assert.equal(sha(raw), result.diffId);
    const entries = await tarEntries(raw);
    assert.deepEqual(
      entries.map(([name]) => name),
      ["a", PREFETCH_LANDMARK, "b", "c", "stargz.index.json"],
    );
    assert.deepEqual(entries[0]?.[1], small);
    assert.deepEqual(entries[1]?.[1], Buffer.from([0x0f]));
    assert.deepEqual(entries[2]?.[1], big);
  });

  it("gives the same bytes for the same input", async () => {
    const one = await write(files, 1000);
    const two = await write(files, 1000);
    assert.deepEqual(one.blob, two.blob);
    const other = await write(files, 700);
    assert.notEqual(sha(other.blob), sha(one.blob));
  });
});
