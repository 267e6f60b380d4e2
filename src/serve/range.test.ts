import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRange } from "./range.ts";

describe("the Range policy (RFC 9110 §14)", () => {
  it("reads one range in each form: closed, open-ended, suffix", () => {
    assert.deepEqual(parseRange("bytes=10-19", 100), [10, 20]);
    assert.deepEqual(parseRange("bytes=10-", 100), [10, 100]);
    assert.deepEqual(parseRange("bytes=-5", 100), [95, 100]);
    assert.deepEqual(parseRange("bytes=0-0", 100), [0, 1]);
    assert.deepEqual(parseRange("bytes=99-99", 100), [99, 100]);
  });

  it("clips a range that runs past the end, and a suffix longer than the blob", () => {
    assert.deepEqual(parseRange("bytes=90-500", 100), [90, 100]);
    assert.deepEqual(parseRange("bytes=-500", 100), [0, 100]);
  });

  it("takes the unit in any case and skips empty list elements", () => {
    assert.deepEqual(parseRange("Bytes=1-2", 100), [1, 3]);
    assert.deepEqual(parseRange("bytes= 1-2 ,", 100), [1, 3]);
  });

  it("no header: the whole blob", () => {
    assert.equal(parseRange(undefined, 100), undefined);
  });

  it("ignores what is not valid bytes= syntax: the whole blob, not 416", () => {
    for (const header of [
      "bytes=abc",
      "bytes=",
      "bytes=-",
      "bytes=1-2-3",
      "bytes=5-3",
      "bytes=+1-2",
      "bytes 0-1",
      "0-1",
      "",
    ]) {
      assert.equal(parseRange(header, 100), undefined, header);
    }
  });

  it("ignores a unit other than bytes", () => {
    assert.equal(parseRange("items=1-2", 100), undefined);
  });

  it("serves several ranges as the whole blob (design note 17)", () => {
    assert.equal(parseRange("bytes=0-1,5-6", 100), undefined);
    assert.equal(parseRange("bytes=0-1, 200-300", 100), undefined);
  });

  it("416 for one valid range the blob does not reach", () => {
    assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=100-200", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=0-", 0), "unsatisfiable");
  });

  it("an empty blob is whole for a suffix (nothing to cut)", () => {
    assert.equal(parseRange("bytes=-5", 0), undefined);
  });
});
