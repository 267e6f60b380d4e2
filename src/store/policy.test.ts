import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { DEFAULT_RETENTION, decidePolicy, validatePolicy } from "./policy.ts";

const GB = 1e9;
const NOW = 1_700_000_000_000;

describe("decidePolicy", () => {
  it("does nothing below the high watermark", () => {
    const d = decidePolicy({ capacity: 100 * GB, available: 16 * GB }, DEFAULT_RETENTION, NOW);
    assert.equal(d.usagePercent, 84);
    assert.equal(d.overHigh, false);
    assert.equal(d.bytesToFree, 0);
    assert.deepEqual(d.rule, {});
  });

  it("at or above the high watermark, frees down to the low one", () => {
    const d = decidePolicy({ capacity: 100 * GB, available: 15 * GB }, DEFAULT_RETENTION, NOW);
    assert.equal(d.usagePercent, 85);
    assert.equal(d.overHigh, true);
    assert.equal(d.bytesToFree, 5 * GB); // to 20 GB available = 80% used
    assert.deepEqual(d.rule, { evict: { freeBytes: 5 * GB } });
  });

  it("rounds usage down like the kubelet and frees whole bytes", () => {
    const d = decidePolicy(
      { capacity: 1000, available: 151 },
      { highPercent: 85, lowPercent: 80 },
      NOW,
    );
    assert.equal(d.usagePercent, 85); // 100 - floor(15.1)
    assert.equal(d.bytesToFree, 49);
  });

  it("adds an age limit whatever the disk usage", () => {
    const d = decidePolicy(
      { capacity: 100 * GB, available: 90 * GB },
      { ...DEFAULT_RETENTION, maxAgeMs: 7 * 86_400_000 },
      NOW,
    );
    assert.deepEqual(d.rule, { expire: { usedBefore: NOW - 7 * 86_400_000 } });
    const full = decidePolicy(
      { capacity: 100 * GB, available: 0 },
      { highPercent: 90, lowPercent: 50, maxAgeMs: 1000 },
      NOW,
    );
    assert.deepEqual(full.rule, {
      expire: { usedBefore: NOW - 1000 },
      evict: { freeBytes: 50 * GB },
    });
  });

  it("treats an unknown filesystem size as not full", () => {
    assert.equal(
      decidePolicy({ capacity: 0, available: 0 }, DEFAULT_RETENTION, NOW).overHigh,
      false,
    );
  });
});

describe("validatePolicy", () => {
  it("wants 0 ≤ low < high ≤ 100 and a positive age", () => {
    for (const bad of [
      { highPercent: 80, lowPercent: 80 },
      { highPercent: 80, lowPercent: 90 },
      { highPercent: 101, lowPercent: 80 },
      { highPercent: 85.5, lowPercent: 80 },
      { highPercent: 85, lowPercent: 80, maxAgeMs: 0 },
    ]) {
      assert.throws(
        () => validatePolicy(bad),
        (e: unknown) => isFerryError(e, "FERRY_INVALID_ARGUMENT"),
      );
    }
    validatePolicy({ highPercent: 1, lowPercent: 0 });
  });
});
