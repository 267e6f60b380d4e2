import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SMALL_SHA256_MAX, smallSha256Hex } from "./sha256.ts";

const reference = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("smallSha256Hex", () => {
  it("matches the FIPS 180-4 examples", () => {
    const text = (s: string) => smallSha256Hex(Buffer.from(s));
    assert.equal(text(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert.equal(text("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(
      text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("matches node:crypto at every padding boundary and up to its limit", () => {
    const lengths = [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, SMALL_SHA256_MAX];
    for (const n of lengths) {
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i++) data[i] = (i * 31 + n) & 0xff;
      assert.equal(smallSha256Hex(data), reference(data), `length ${n}`);
    }
  });

  it("matches node:crypto on random input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (data) => {
        assert.equal(smallSha256Hex(data), reference(data));
      }),
      { numRuns: 500 },
    );
  });

  it("refuses input longer than it is meant for", () => {
    assert.throws(() => smallSha256Hex(new Uint8Array(SMALL_SHA256_MAX + 1)), RangeError);
  });
});
