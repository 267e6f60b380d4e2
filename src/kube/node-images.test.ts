import assert from "node:assert/strict";
import { test } from "node:test";
import { aggregate, labelsHash, MAX_FAILED, nodeImagesSpec } from "./node-images.ts";
import { nodeStatus, type PrePull } from "./prepull.ts";

const prepull = (
  name: string,
  images: string[],
  extra: Partial<NonNullable<PrePull["spec"]>> = {},
): PrePull => ({
  metadata: { namespace: "apps", name },
  spec: { images, ...extra },
});

test("a node's spec: the images of the PrePulls selecting it, merged by image, required if any requires it", () => {
  const labels = { pool: "gpu", zone: "a" };
  const spec = nodeImagesSpec(
    [
      prepull("web", ["reg/web:1", "reg/base:1"], { imagePullSecrets: [{ name: "pull" }] }),
      prepull("base", ["reg/base:1"], { required: true }),
      prepull("cpu-only", ["reg/cpu:1"], { nodeSelector: { pool: "cpu" } }),
      {
        ...prepull("rollout", ["reg/rollout:1"]),
        metadata: {
          namespace: "apps",
          name: "rollout",
          labels: { "ferry.dev/workload-prepull": "true" },
        },
      },
    ],
    labels,
  );
  assert.deepEqual(spec.images, [
    {
      image: "reg/base:1",
      required: true,
      prepulls: ["apps/base", "apps/web"],
      pullSecrets: ["apps/pull"],
    },
    { image: "reg/web:1", required: false, prepulls: ["apps/web"], pullSecrets: ["apps/pull"] },
  ]);
  assert.equal(spec.nodeLabels, labelsHash({ zone: "a", pool: "gpu" }), "order does not matter");
  assert.notEqual(spec.nodeLabels, labelsHash({ pool: "cpu", zone: "a" }));
});

test("a node's spec: a rollout PrePull granting it adds its images (not required), merged with the others", () => {
  const rollout: PrePull = {
    ...prepull("web-dp-1a2b", ["reg/web:2", "reg/base:1"], { required: false }),
    metadata: {
      namespace: "apps",
      name: "web-dp-1a2b",
      labels: { "ferry.dev/workload-prepull": "true" },
    },
  };
  const spec = nodeImagesSpec([prepull("base", ["reg/base:1"], { required: true })], {}, [rollout]);
  assert.deepEqual(spec.images, [
    { image: "reg/base:1", required: true, prepulls: ["apps/base", "apps/web-dp-1a2b"] },
    { image: "reg/web:2", required: false, prepulls: ["apps/web-dp-1a2b"] },
  ]);
});

test("a PrePull's aggregate: ready of reporting, failures capped, a previous version's entry counted", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const p: PrePull = {
    ...prepull("web", ["reg/a:1", "reg/b:1"]),
    status: {
      nodes: {
        "old-node": nodeStatus(
          [
            { image: "reg/a:1", state: "present" },
            { image: "reg/b:1", state: "present" },
          ],
          now,
        ),
      },
    },
  };
  const reports = new Map([
    [
      "n-1",
      nodeStatus(
        [
          { image: "reg/a:1", state: "present" },
          { image: "reg/b:1", state: "present" },
          { image: "reg/other:1", state: "failed", reason: "not this PrePull's" },
        ],
        now,
      ),
    ],
    [
      "n-2",
      nodeStatus(
        [
          { image: "reg/a:1", state: "present" },
          { image: "reg/b:1", state: "failed", reason: "FERRY_REGISTRY_NOT_FOUND: gone" },
        ],
        now,
      ),
    ],
  ]);
  const agg = aggregate(p, ["n-1", "n-2", "n-3", "old-node"], (n) => reports.get(n));
  assert.deepEqual(agg, {
    ready: "2/3",
    selected: 4,
    failed: ["n-2: reg/b:1: FERRY_REGISTRY_NOT_FOUND: gone"],
    failedNodes: 1,
  });
  const many = Array.from({ length: MAX_FAILED + 5 }, (_, i) => `f-${i}`);
  const failing = nodeStatus([{ image: "reg/a:1", state: "failed", reason: "x" }], now);
  const capped = aggregate(prepull("one", ["reg/a:1"]), many, () => failing);
  assert.equal(capped.failed.length, MAX_FAILED);
  assert.equal(capped.failedNodes, MAX_FAILED + 5);
  assert.equal(capped.ready, `0/${MAX_FAILED + 5}`);
});
