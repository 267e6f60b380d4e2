import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError, isFerryError } from "../observe/index.ts";
import { Deadline, idleTimeoutFor } from "./deadline.ts";

const POLICY = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, maxElapsedMs: 60_000 };

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("Deadline", () => {
  it("ends when the time passes without progress; bytes past the furthest move it on", () => {
    const c = clock();
    const d = new Deadline(POLICY, c.now);
    d.attempt();
    c.advance(50_000);
    d.progress(1000);
    c.advance(50_000);
    assert.equal(d.remainingMs(), 10_000);
    assert.equal(d.allows(200), true);
    d.progress(1000); // the same bytes again: no progress
    c.advance(10_000);
    assert.equal(d.allows(0), false);
    assert.equal(d.allows(0), false, "once spent, always spent");
  });

  it("ends after maxAttempts in a row without progress, however fast they fail", () => {
    const d = new Deadline(POLICY, clock().now);
    for (let i = 0; i < 4; i++) {
      d.attempt();
      assert.equal(d.allows(0), true);
    }
    d.progress(1);
    for (let i = 0; i < 4; i++) d.attempt();
    assert.equal(d.allows(0), true, "progress starts the count again");
    d.attempt();
    assert.equal(d.allows(0), false);
    assert.equal(d.attempts, 9);
  });

  it("a restart from zero makes the bytes count again", () => {
    const c = clock();
    const d = new Deadline(POLICY, c.now);
    d.progress(5000);
    c.advance(59_000);
    d.restart();
    d.progress(10);
    assert.equal(d.remainingMs(), 60_000);
  });

  it("idle timeout: half the deadline, never past what is left", () => {
    const c = clock();
    const d = new Deadline({ ...POLICY, maxElapsedMs: 2000 }, c.now);
    assert.equal(d.idleTimeoutMs(), 1000);
    c.advance(1500);
    assert.equal(d.idleTimeoutMs(), 500);
    c.advance(1000);
    assert.equal(d.idleTimeoutMs(), 1);
    assert.equal(idleTimeoutFor(60_000), 30_000);
  });

  it("gives up saying what, how long, how many attempts; keeps the last error's code", () => {
    const c = clock();
    const d = new Deadline({ ...POLICY, maxElapsedMs: 2000 }, c.now);
    d.attempt();
    d.attempt();
    c.advance(2100);
    const stalled = d.gaveUp(
      new FerryError("FERRY_TIMEOUT", "registry r stopped answering", { fields: { host: "r" } }),
      "blob sha256:ab of r/x",
    );
    assert.ok(isFerryError(stalled, "FERRY_TIMEOUT"));
    assert.equal(
      stalled.message,
      "blob sha256:ab of r/x: no progress for 2 s, gave up after 2 attempts in 2.1 s (registry r stopped answering)",
    );
    assert.match(stalled.hint ?? "", /--timeout/);
    assert.deepEqual(stalled.fields, { host: "r", attempts: 2, elapsedMs: 2100, timeoutMs: 2000 });

    const failing = d.gaveUp(
      new FerryError("FERRY_REGISTRY_UNAVAILABLE", "registry r failed with HTTP 503", {
        hint: "retry later",
      }),
      "blob sha256:ab of r/x",
    );
    assert.ok(isFerryError(failing, "FERRY_REGISTRY_UNAVAILABLE"));
    assert.equal(
      failing.message,
      "registry r failed with HTTP 503 (gave up after 2 attempts in 2.1 s)",
    );
    assert.equal(failing.hint, "retry later");
  });
});
