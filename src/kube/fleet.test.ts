import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fleetView, withFleet } from "./fleet.ts";
import type { NodeImageStatus, PrePull } from "./prepull.ts";

const A = "registry.example/team/a:1";
const B = "registry.example/team/b:1";

function prepull(
  name: string,
  images: string[],
  nodes: Record<string, { updated: string; images: NodeImageStatus[] }>,
  required = false,
): PrePull {
  const status = Object.fromEntries(
    Object.entries(nodes).map(([n, s]) => [
      n,
      { ...s, present: s.images.filter((i) => i.state === "present").length, total: images.length },
    ]),
  );
  return {
    metadata: { name, namespace: "apps" },
    spec: { images, required },
    status: { nodes: status },
  };
}

describe("the fleet view", () => {
  it("takes other nodes from the PrePull statuses and this node live", () => {
    const view = fleetView({
      node: "n1",
      prepulls: [
        prepull("p1", [A, B], {
          // this node's written entry is stale: the live state wins
          n1: { updated: "2026-01-01T00:00:00Z", images: [{ image: A, state: "missing" }] },
          n3: {
            updated: "2026-01-01T00:00:00Z",
            images: [
              { image: A, state: "present", digest: "sha256:aa" },
              { image: B, state: "failed", reason: "FERRY_REGISTRY_NOT_FOUND: no such tag" },
            ],
          },
        }),
        prepull(
          "p2",
          [B],
          {
            // n3 wrote p2 later than p1: its newer entry for B wins
            n3: { updated: "2026-01-01T00:05:00Z", images: [{ image: B, state: "pulling" }] },
            n2: { updated: "2026-01-01T00:00:00Z", images: [{ image: B, state: "missing" }] },
          },
          true,
        ),
      ],
      matching: new Set(["apps/p1"]),
      listed: ["registry.example/team/own:1"],
      live: (image) =>
        image === A ? { image, state: "present" } : { image, state: "failed", reason: "oops" },
    });
    assert.deepEqual(view.nodes, ["n1", "n2", "n3"]);
    const rows = Object.fromEntries(view.images.map((r) => [r.image, r]));
    assert.deepEqual(rows[A]?.nodes, {
      n1: { state: "present" },
      n3: { state: "present", digest: "sha256:aa", updated: "2026-01-01T00:00:00Z" },
    });
    assert.equal(rows[A]?.required, false);
    assert.deepEqual(rows[B]?.prepulls, ["apps/p1", "apps/p2"]);
    assert.equal(rows[B]?.required, true);
    assert.deepEqual(rows[B]?.nodes["n1"], {
      state: "failed",
      reason: "oops",
      lastError: { code: "PullFailed", message: "oops" },
    });
    assert.equal(rows[B]?.nodes["n2"]?.state, "missing");
    assert.equal(rows[B]?.nodes["n3"]?.state, "pulling");
    assert.deepEqual(rows["registry.example/team/own:1"]?.nodes, {
      n1: { state: "failed", reason: "oops", lastError: { code: "PullFailed", message: "oops" } },
    });
  });

  it("a PrePull that no longer selects this node gives it no cell", () => {
    const view = fleetView({
      node: "n1",
      prepulls: [
        prepull("p1", [A], {
          n1: { updated: "2026-01-01T00:00:00Z", images: [{ image: A, state: "present" }] },
        }),
      ],
      matching: new Set(),
      live: () => assert.fail("not asked"),
    });
    assert.deepEqual(view.nodes, ["n1"]);
    assert.deepEqual(view.images, [
      { image: A, required: false, prepulls: ["apps/p1"], nodes: {} },
    ]);
  });

  it("merges into the agent's document: its rows keep their targets, PrePull-only rows are added", () => {
    const view = fleetView({
      node: "n1",
      prepulls: [
        prepull("p1", [A, B], {
          n2: {
            updated: "2026-01-01T00:00:00Z",
            images: [
              { image: A, state: "present" },
              { image: B, state: "failed", reason: "FERRY_DISK_FULL: above 85%" },
            ],
          },
        }),
      ],
      matching: new Set(["apps/p1"]),
      live: (image) => ({ image, state: image === A ? "present" : "missing" }),
    });
    const doc = withFleet(
      {
        node: "n1",
        targets: ["containerd"],
        images: [{ image: A, required: true, targets: { containerd: { state: "present" } } }],
      },
      { ...view, images: view.images.filter((r) => r.image === A || r.image === B) },
      { node: "n1", conditions: [] },
    );
    assert.deepEqual(doc["nodes"], ["n1", "n2"]);
    assert.deepEqual(doc["kubernetes"], { node: "n1", conditions: [] });
    const [a, b] = doc["images"] as Record<string, unknown>[];
    assert.deepEqual(a?.["targets"], { containerd: { state: "present" } });
    assert.equal(a?.["required"], true);
    assert.deepEqual(Object.keys(a?.["nodes"] as object), ["n1", "n2"]);
    assert.equal(b?.["source"], "prepull");
    assert.deepEqual(b?.["targets"], {});
    assert.deepEqual((b?.["nodes"] as Record<string, unknown> | undefined)?.["n2"], {
      state: "failed",
      reason: "FERRY_DISK_FULL: above 85%",
      lastError: { code: "FERRY_DISK_FULL", message: "above 85%" },
      updated: "2026-01-01T00:00:00Z",
    });
  });
});
