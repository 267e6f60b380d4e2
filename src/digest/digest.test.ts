import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { DigestVerifier, digestOf, parseDigest } from "./index.ts";

const hello = digestOf("hello");

describe("parseDigest", () => {
  it("accepts sha256 with 64 hex", () => {
    assert.equal(parseDigest(hello).hex.length, 64);
  });
  it("rejects other algorithms explicitly", () => {
    assert.throws(
      () => parseDigest(`sha512:${"a".repeat(128)}`),
      (e) => isFerryError(e, "FERRY_UNSUPPORTED_DIGEST") && /sha512/.test(e.message),
    );
  });
  it("rejects short, uppercase and missing parts", () => {
    for (const bad of ["sha256:abc", `sha256:${"A".repeat(64)}`, "nocolon", ":abc"]) {
      assert.throws(
        () => parseDigest(bad),
        (e) => isFerryError(e, "FERRY_INVALID_DIGEST"),
        bad,
      );
    }
  });
});

describe("DigestVerifier", () => {
  it("accepts matching content fed in pieces", () => {
    const v = new DigestVerifier(hello, 5);
    v.update(Buffer.from("he"));
    v.update(Buffer.from("llo"));
    assert.equal(v.verify(), hello);
  });
  it("rejects wrong content", () => {
    const v = new DigestVerifier(hello, 5);
    v.update(Buffer.from("hellO"));
    assert.throws(
      () => v.verify(),
      (e) => isFerryError(e, "FERRY_DIGEST_MISMATCH"),
    );
  });
  it("rejects an oversized body as soon as it overruns", () => {
    const v = new DigestVerifier(hello, 5);
    assert.throws(
      () => v.update(Buffer.from("hello!")),
      (e) => isFerryError(e, "FERRY_SIZE_MISMATCH"),
    );
  });
  it("rejects a truncated body", () => {
    const v = new DigestVerifier(hello, 5);
    v.update(Buffer.from("hell"));
    assert.throws(
      () => v.verify(),
      (e) => isFerryError(e, "FERRY_SIZE_MISMATCH"),
    );
  });
});
