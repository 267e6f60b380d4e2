import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RingBuffer, Sampler } from "./ring.ts";

describe("RingBuffer", () => {
  it("keeps the newest items, oldest first, up to its capacity", () => {
    const ring = new RingBuffer<number>(3);
    assert.deepEqual(ring.toArray(), []);
    for (const n of [1, 2]) ring.push(n);
    assert.deepEqual(ring.toArray(), [1, 2]);
    for (const n of [3, 4, 5, 6, 7]) ring.push(n);
    assert.deepEqual(ring.toArray(), [5, 6, 7]);
    assert.equal(ring.size, 3);
  });

  it("refuses a capacity that is not a positive integer", () => {
    assert.throws(() => new RingBuffer(0), RangeError);
    assert.throws(() => new RingBuffer(1.5), RangeError);
  });
});

describe("Sampler", () => {
  it("records each measurement with its time, skips failed ones, and stays bounded", async () => {
    let n = 0;
    const errors: unknown[] = [];
    const sampler = new Sampler({
      measure: async () => {
        n++;
        if (n === 2) throw new Error("store unreadable");
        return { bytes: n * 10 };
      },
      everyMs: 60_000,
      capacity: 2,
      now: () => 1000 + n,
      onError: (err) => errors.push(err),
    });
    for (let i = 0; i < 4; i++) await sampler.sample();
    assert.deepEqual(sampler.samples(), [
      { bytes: 30, t: 1003 },
      { bytes: 40, t: 1004 },
    ]);
    assert.equal(errors.length, 1);
  });

  it("joins a sample already running instead of measuring twice at once", async () => {
    let calls = 0;
    const sampler = new Sampler({
      measure: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 10));
        return { v: calls };
      },
      everyMs: 60_000,
    });
    await Promise.all([sampler.sample(), sampler.sample(), sampler.sample()]);
    assert.equal(calls, 1);
    assert.equal(sampler.samples().length, 1);
  });
});
