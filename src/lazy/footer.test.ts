import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { FOOTER_SIZE, LEGACY_FOOTER_SIZE, parseFooter } from "./footer.ts";

/** An empty stored gzip member whose extra field holds the TOC offset, as the format describes. */
export function footerBytes(tocOffset: number, legacy = false): Buffer {
  const payload = Buffer.from(`${tocOffset.toString(16).padStart(16, "0")}STARGZ`, "latin1");
  const extra = legacy
    ? payload
    : Buffer.concat([Buffer.from("SG", "latin1"), u16(payload.length), payload]);
  const header = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff]);
  const empty = Buffer.from([1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, u16(extra.length), extra, empty]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

describe("parseFooter", () => {
  it("reads the TOC offset of an eStargz footer", () => {
    const footer = footerBytes(0x1234abcd);
    assert.equal(footer.length, FOOTER_SIZE);
    const tail = Buffer.concat([Buffer.from("layer bytes before"), footer]);
    assert.deepEqual(parseFooter(tail), { tocOffset: 0x1234abcd, size: FOOTER_SIZE });
  });

  it("reads a legacy stargz footer", () => {
    const footer = footerBytes(77, true);
    assert.equal(footer.length, LEGACY_FOOTER_SIZE);
    assert.deepEqual(parseFooter(Buffer.concat([Buffer.alloc(4), footer])), {
      tocOffset: 77,
      size: LEGACY_FOOTER_SIZE,
    });
  });

  it("says a plain gzip tail is not a footer", () => {
    assert.equal(parseFooter(gzipSync(Buffer.alloc(1000, 7)).subarray(-FOOTER_SIZE)), undefined);
    assert.equal(parseFooter(Buffer.alloc(10)), undefined);
  });

  it("refuses a footer whose magic or hex digits are damaged", () => {
    const bad = footerBytes(10);
    bad[16 + 16 + 2] = 0x58; // "STXRGZ"
    assert.equal(parseFooter(bad), undefined);
    const hex = footerBytes(10);
    hex[16] = 0x67; // "g" is not hex
    assert.equal(parseFooter(hex), undefined);
  });
});
