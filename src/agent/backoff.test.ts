import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backoffDelay,
  OPTIONAL_IMAGE_BACKOFF,
  REQUIRED_IMAGE_BACKOFF,
  TARGET_WAIT_BACKOFF,
  TRANSIENT_PULL_BACKOFF,
} from "./backoff.ts";

const low = () => 0;
const high = () => 0.999_999;

describe("backoffDelay (the one retry policy of warming)", () => {
  it("required images: from 2.5–5 s, doubling, capped at 2.5–5 min", () => {
    const lows = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) =>
      backoffDelay(REQUIRED_IMAGE_BACKOFF, n, low),
    );
    assert.deepEqual(
      lows,
      [2_500, 5_000, 10_000, 20_000, 40_000, 80_000, 150_000, 150_000, 150_000],
    );
    const highs = [0, 1, 6, 20].map((n) => backoffDelay(REQUIRED_IMAGE_BACKOFF, n, high));
    assert.deepEqual(highs, [5_000, 10_000, 300_000, 300_000]);
  });

  it("optional images start later and stop later", () => {
    assert.equal(backoffDelay(OPTIONAL_IMAGE_BACKOFF, 0, low), 15_000);
    assert.equal(backoffDelay(OPTIONAL_IMAGE_BACKOFF, 0, high), 30_000);
    assert.equal(backoffDelay(OPTIONAL_IMAGE_BACKOFF, 30, high), 600_000);
    for (let n = 0; n < 10; n++)
      assert.ok(
        backoffDelay(OPTIONAL_IMAGE_BACKOFF, n, low) >=
          backoffDelay(REQUIRED_IMAGE_BACKOFF, n, low),
        `attempt ${n}`,
      );
  });

  it("the jitter spreads each delay over its upper half", () => {
    assert.equal(
      backoffDelay(REQUIRED_IMAGE_BACKOFF, 2, () => 0.5),
      15_000,
    );
    assert.equal(
      backoffDelay(TARGET_WAIT_BACKOFF, 0, () => 0.5),
      375,
    );
    assert.equal(backoffDelay(TRANSIENT_PULL_BACKOFF, 10, high), 30_000);
  });

  it("never overflows, however many attempts", () => {
    assert.equal(backoffDelay(REQUIRED_IMAGE_BACKOFF, 5_000, high), 300_000);
    assert.equal(backoffDelay({ initialMs: 1, maxMs: 10 }, Number.MAX_SAFE_INTEGER, low), 5);
  });
});
