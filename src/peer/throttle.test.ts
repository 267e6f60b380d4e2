import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Throttle } from "./throttle.ts";

describe("upload cap", () => {
  it("lets a burst through at once and spaces out the rest at the rate", async () => {
    const rate = 1_000_000; // bytes per second; the burst is a tenth of it
    const throttle = new Throttle(rate);
    const started = performance.now();
    await throttle.take(100_000);
    await Promise.all([throttle.take(150_000), throttle.take(150_000)]);
    const seconds = (performance.now() - started) / 1000;
    // 300 kB beyond the burst cannot go out in less than 0.3 s (a lower bound: slowness cannot fail it).
    assert.ok(seconds >= 0.29, `took ${seconds} s`);
  });

  it("with no cap, never waits", async () => {
    const throttle = new Throttle(0);
    assert.ok(throttle.unlimited);
    await throttle.take(1e12);
  });
});

describe("fair share between blobs", () => {
  it("blobs take turns under the cap: one sent to many peers does not crowd out one sent to one", async () => {
    const throttle = new Throttle(10_000_000); // burst 1 MB: every take below waits its turn
    const many = throttle.share("sha256:many");
    const one = throttle.share("sha256:one");
    const granted: string[] = [];
    const take = (t: Throttle, name: string) => t.take(1_000_000).then(() => granted.push(name));
    // Four chunks of the first blob are queued before the other blob's one: the first goes at
    // once, then the blobs alternate.
    await Promise.all([
      take(many, "many"),
      take(many, "many"),
      take(many, "many"),
      take(many, "many"),
      take(one, "one"),
    ]);
    assert.deepEqual(granted, ["many", "many", "one", "many", "many"]);
  });
});
