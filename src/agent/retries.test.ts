import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import type { TargetKind } from "../runtime/index.ts";
import { type PendingRetry, PullRetries } from "./retries.ts";
import type { WarmResult } from "./types.ts";

const IMAGE = "registry.example/team/app:1";
const failed = (required: boolean, code = "FERRY_MANIFEST_UNKNOWN"): WarmResult => ({
  image: IMAGE,
  target: "containerd",
  state: "failed",
  required,
  error: { code, message: "x" },
});
const settled = (state: "pulled" | "present", target: TargetKind = "containerd"): WarmResult => ({
  image: IMAGE,
  target,
  state,
  required: true,
});

describe("PullRetries (the agent tries failed images again on its own)", () => {
  let tried: Array<[string, TargetKind]>;
  let changes: Array<PendingRetry | undefined>;
  let retries: PullRetries;
  beforeEach(() => {
    mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    tried = [];
    changes = [];
    retries = new PullRetries({
      random: () => 0, // the lower end of each delay
      retry: (image, target) => tried.push([image, target]),
      onChange: (_image, _target, retry) => changes.push(retry),
    });
  });
  afterEach(() => {
    retries.stop();
    mock.timers.reset();
  });

  it("a failed required image is tried after 2.5 s, then 5 s, 10 s… until it succeeds", () => {
    retries.record(failed(true));
    assert.deepEqual(retries.get(IMAGE, "containerd"), {
      attempts: 1,
      nextAttemptAt: new Date(2_500).toISOString(),
    });
    mock.timers.tick(2_499);
    assert.deepEqual(tried, []);
    mock.timers.tick(1);
    assert.deepEqual(tried, [[IMAGE, "containerd"]]);
    retries.record(failed(true));
    assert.equal(retries.get(IMAGE, "containerd")?.attempts, 2);
    mock.timers.tick(4_999);
    assert.equal(tried.length, 1);
    mock.timers.tick(1);
    assert.equal(tried.length, 2);
    retries.record(settled("pulled"));
    assert.equal(retries.get(IMAGE, "containerd"), undefined, "reset on success");
    assert.equal(retries.pending, 0);
    assert.equal(changes.at(-1), undefined);
    // The next failure starts the backoff over.
    retries.record(failed(true));
    assert.equal(retries.get(IMAGE, "containerd")?.attempts, 1);
  });

  it("optional images wait longer (15 s at first)", () => {
    retries.record(failed(false));
    mock.timers.tick(14_999);
    assert.deepEqual(tried, []);
    mock.timers.tick(1);
    assert.equal(tried.length, 1);
  });

  it("with a cap on attempts (a webhook-only image) it gives up, until forget() or a success", () => {
    const givenUp: number[] = [];
    const capped = new PullRetries({
      random: () => 0,
      retry: (image, target) => tried.push([image, target]),
      maxAttempts: (r) => (r.required ? undefined : 3),
      onGiveUp: (_image, _target, attempts) => givenUp.push(attempts),
    });
    try {
      capped.record(failed(false));
      capped.record(failed(false));
      assert.equal(capped.get(IMAGE, "containerd")?.attempts, 2);
      capped.record(failed(false));
      assert.deepEqual(givenUp, [3]);
      assert.equal(capped.pending, 0);
      // Later failures (the push handler's own attempts) schedule nothing.
      capped.record(failed(false));
      assert.equal(capped.pending, 0);
      mock.timers.tick(3_600_000);
      assert.deepEqual(tried, []);
      // Pushed again: tried afresh.
      capped.forget(IMAGE);
      capped.record(failed(false));
      assert.equal(capped.get(IMAGE, "containerd")?.attempts, 1);
      // Required images have no cap.
      for (let i = 0; i < 10; i++) capped.record({ ...failed(true), image: "req:1" });
      assert.equal(capped.get("req:1", "containerd")?.attempts, 10);
    } finally {
      capped.stop();
    }
  });

  it("per image × target; a shutdown's interruption, forget() and stop() schedule nothing", () => {
    retries.record(failed(true));
    retries.record({ ...failed(true), target: "store" });
    assert.equal(retries.pending, 2);
    retries.record(settled("present", "store"));
    assert.equal(retries.pending, 1);
    assert.ok(retries.get(IMAGE, "containerd"));
    retries.record({ ...failed(true, "FERRY_INTERRUPTED"), image: "other:1" });
    assert.equal(retries.pending, 1);
    retries.forget(IMAGE);
    assert.equal(retries.pending, 0);
    retries.record(failed(true));
    retries.stop();
    mock.timers.tick(600_000);
    assert.deepEqual(tried, []);
  });
});
