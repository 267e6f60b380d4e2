import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allocateGrants, type NodeProgress, type RolloutDemand } from "./budget.ts";

const NOW = 1_000_000;
const options = { budget: 2, now: NOW, staleAfterMs: 60_000 };

function demand(
  id: string,
  eligible: string[],
  granted: Record<string, number> = {},
  progress: Record<string, NodeProgress> = {},
): RolloutDemand {
  return {
    id,
    eligible,
    granted: new Map(Object.entries(granted)),
    progress: new Map(Object.entries(progress)),
  };
}

function nodesOf(result: Map<string, Map<string, number>>, id: string): string[] {
  return [...(result.get(id)?.keys() ?? [])].sort();
}

describe("pull budget", () => {
  it("grants at most K nodes at once", () => {
    const r = allocateGrants([demand("a", ["n1", "n2", "n3", "n4"])], options);
    assert.deepEqual(nodesOf(r, "a"), ["n1", "n2"]);
  });

  it("frees a slot when a node completes or fails", () => {
    const r = allocateGrants(
      [
        demand(
          "a",
          ["n1", "n2", "n3", "n4"],
          { n1: NOW - 5, n2: NOW - 5 },
          { n1: "complete", n2: "failed" },
        ),
      ],
      options,
    );
    assert.deepEqual(nodesOf(r, "a"), ["n1", "n2", "n3", "n4"]);
    const busy = allocateGrants(
      [demand("a", ["n1", "n2", "n3"], { n1: NOW - 5, n2: NOW - 5 }, { n1: "complete" })],
      options,
    );
    assert.deepEqual(nodesOf(busy, "a"), ["n1", "n2", "n3"]);
    const full = allocateGrants(
      [demand("a", ["n1", "n2", "n3"], { n1: NOW - 5, n2: NOW - 5 })],
      options,
    );
    assert.deepEqual(nodesOf(full, "a"), ["n1", "n2"]);
  });

  it("counts the budget across rollouts and serves the oldest first", () => {
    const r = allocateGrants(
      [demand("old", ["n1"], { n1: NOW - 5 }), demand("new", ["n2", "n3", "n4"])],
      options,
    );
    assert.deepEqual(nodesOf(r, "old"), ["n1"]);
    assert.deepEqual(nodesOf(r, "new"), ["n2"]);
  });

  it("gives a busy node no second grant until it is done", () => {
    const r = allocateGrants([demand("a", ["n1"], { n1: NOW - 5 }), demand("b", ["n1", "n2"])], {
      ...options,
      budget: 5,
    });
    assert.deepEqual(nodesOf(r, "b"), ["n2"]);
  });

  it("stops counting a stale grant", () => {
    const r = allocateGrants(
      [demand("a", ["n1", "n2", "n3"], { n1: NOW - 61_000, n2: NOW - 5 })],
      options,
    );
    assert.deepEqual(nodesOf(r, "a"), ["n1", "n2", "n3"]);
  });

  it("drops grants of nodes no longer eligible and keeps grant times", () => {
    const r = allocateGrants([demand("a", ["n2"], { n1: NOW - 5, n2: NOW - 7 })], options);
    assert.deepEqual([...(r.get("a") ?? [])], [["n2", NOW - 7]]);
  });

  it("marks nodes that already report everything present without using budget", () => {
    const r = allocateGrants(
      [demand("a", ["n1", "n2", "n3"], {}, { n1: "complete", n2: "complete" })],
      { ...options, budget: 1 },
    );
    assert.deepEqual(nodesOf(r, "a"), ["n1", "n2", "n3"]);
  });

  it("grants a failed node again once the retry delay has passed, within the budget", () => {
    const failed = demand("a", ["n1", "n2"], { n1: NOW - 30_000, n2: NOW - 5 }, { n1: "failed" });
    const early = allocateGrants([failed], { ...options, budget: 1, retryFailedAfterMs: 60_000 });
    assert.deepEqual(
      [...(early.get("a") ?? [])],
      [
        ["n1", NOW - 30_000],
        ["n2", NOW - 5],
      ],
    );
    const old = demand("a", ["n1", "n2"], { n1: NOW - 61_000 }, { n1: "failed" });
    const late = allocateGrants([old], { ...options, budget: 1, retryFailedAfterMs: 60_000 });
    assert.deepEqual([...(late.get("a") ?? [])], [["n1", NOW]]);
    const never = allocateGrants([old], { ...options, budget: 1 });
    assert.deepEqual(
      [...(never.get("a") ?? [])],
      [
        ["n1", NOW - 61_000],
        ["n2", NOW],
      ],
    );
  });

  it("treats a budget below one as one", () => {
    const r = allocateGrants([demand("a", ["n1", "n2"])], { ...options, budget: 0 });
    assert.deepEqual(nodesOf(r, "a"), ["n1"]);
  });
});
