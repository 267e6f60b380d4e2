import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { parseDuration, parsePercent, parseSize } from "./quantity.ts";

function rejects(fn: () => unknown, hint: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isFerryError(err, "FERRY_INVALID_ARGUMENT"), String(err));
    assert.match(err.hint ?? "", hint);
    return true;
  });
}

describe("parseSize", () => {
  it("reads decimal and binary units, any case, bare bytes", () => {
    assert.equal(parseSize("20GB"), 20_000_000_000);
    assert.equal(parseSize("512MiB"), 512 * 1024 * 1024);
    assert.equal(parseSize("1.5gb"), 1_500_000_000);
    assert.equal(parseSize("4096"), 4096);
    assert.equal(parseSize("10 kB"), 10_000);
    assert.equal(parseSize("1TiB"), 2 ** 40);
    assert.equal(parseSize("0B"), 0);
  });
  it("refuses ambiguous, unknown and malformed sizes with a hint", () => {
    rejects(() => parseSize("20G"), /20GB .*20GiB/);
    rejects(() => parseSize("5mb/s"), /KiB/);
    rejects(() => parseSize("20 gigs"), /e\.g\. 20GB/);
    rejects(() => parseSize("-1GB"), /e\.g\./);
    rejects(() => parseSize(""), /e\.g\./);
    rejects(() => parseSize("1e3MB"), /e\.g\./);
  });
  it("names the option in the message", () => {
    assert.throws(() => parseSize("x", "--keep-storage"), /--keep-storage "x" is not a size/);
  });
});

describe("parseDuration", () => {
  it("reads s, m, h, d, w and combinations", () => {
    assert.equal(parseDuration("30m"), 30 * 60_000);
    assert.equal(parseDuration("48h"), 48 * 3_600_000);
    assert.equal(parseDuration("7d"), 7 * 86_400_000);
    assert.equal(parseDuration("2w"), 14 * 86_400_000);
    assert.equal(parseDuration("1h30m"), 90 * 60_000);
    assert.equal(parseDuration("0s"), 0);
  });
  it("refuses numbers without units, unknown units and fractions", () => {
    rejects(() => parseDuration("48"), /48h or 48d/);
    rejects(() => parseDuration("3y"), /s, m, h, d, w/);
    rejects(() => parseDuration("1.5h"), /whole numbers/);
    rejects(() => parseDuration("h"), /whole numbers/);
    rejects(() => parseDuration("-2h"), /whole numbers/);
  });
});

describe("parsePercent", () => {
  it("reads whole percentages 0–100, with or without %", () => {
    assert.equal(parsePercent("85"), 85);
    assert.equal(parsePercent("80%"), 80);
    assert.equal(parsePercent("0"), 0);
    assert.equal(parsePercent("100"), 100);
  });
  it("refuses the rest", () => {
    for (const bad of ["101", "-1", "8.5", "high", ""])
      rejects(() => parsePercent(bad), /0 to 100/);
  });
});
