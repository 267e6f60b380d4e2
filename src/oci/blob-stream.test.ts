import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { boundedRange, checkRange, verifiedBlob } from "./blob-stream.ts";

const bytes = Buffer.from("the bytes of a blob, in three parts");
const desc = {
  mediaType: "application/octet-stream",
  digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
  size: bytes.length,
};
const parts = (b: Buffer) => Readable.from([b.subarray(0, 10), b.subarray(10, 20), b.subarray(20)]);

async function drain(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of stream) out.push(p as Buffer);
  return Buffer.concat(out);
}

describe("blob streams", () => {
  it("verifiedBlob passes the blob's bytes and fails, instead of ending, on others", async () => {
    assert.ok((await drain(verifiedBlob(parts(bytes), desc))).equals(bytes));
    const other = Buffer.from(bytes);
    other[5] = 0x21;
    await assert.rejects(drain(verifiedBlob(parts(other), desc)), (e) =>
      isFerryError(e, "FERRY_DIGEST_MISMATCH"),
    );
    await assert.rejects(drain(verifiedBlob(parts(Buffer.concat([bytes, bytes])), desc)), (e) =>
      isFerryError(e, "FERRY_SIZE_MISMATCH"),
    );
  });

  it("a range never yields more than asked", async () => {
    const range = { start: 0, end: 12 };
    await assert.rejects(drain(boundedRange(parts(bytes), range, desc.digest, "test")), (e) =>
      isFerryError(e, "FERRY_SIZE_MISMATCH"),
    );
    const exact = await drain(
      boundedRange(parts(bytes.subarray(0, 12)), range, desc.digest, "test"),
    );
    assert.ok(exact.equals(bytes.subarray(0, 12)));
  });

  it("checkRange takes 0 ≤ start < end ≤ size only", () => {
    checkRange({ start: 0, end: desc.size }, desc);
    for (const r of [
      { start: 3, end: 3 },
      { start: -1, end: 2 },
      { start: 0, end: desc.size + 1 },
      { start: 0.5, end: 2 },
    ])
      assert.throws(
        () => checkRange(r, desc),
        (e) => isFerryError(e, "FERRY_INVALID_ARGUMENT"),
      );
  });
});
