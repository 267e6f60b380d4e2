import assert from "node:assert/strict";
import { test } from "node:test";
import { jsonPatch as applyJsonPatch } from "../../test/fixtures/kube-apiserver.ts";
import { planTaintAddition, planTaintRemoval, type Taint } from "./taint.ts";

/** RFC 6902 as the fake API server applies it. */
const jsonPatch = (doc: unknown, ops: unknown) => applyJsonPatch(doc as never, ops as never);

const KEY = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
const ours: Taint = { key: KEY, value: "pending", effect: "NoSchedule" };
const theirs: Taint = { key: "dedicated", value: "gpu", effect: "NoSchedule" };

test("removal touches only ferry's key and tests the taints it read", () => {
  const plan = planTaintRemoval([theirs, ours], KEY);
  assert.deepEqual(plan, [
    { op: "test", path: "/spec/taints", value: [theirs, ours] },
    { op: "replace", path: "/spec/taints", value: [theirs] },
  ]);
  assert.equal(planTaintRemoval([theirs], KEY), undefined);
  assert.equal(planTaintRemoval(undefined, KEY), undefined);
});

test("a removal planned from stale taints fails its test instead of clobbering", () => {
  const plan = planTaintRemoval([ours], KEY);
  const node = { spec: { taints: [ours, { key: "racer", effect: "NoExecute" }] } };
  assert.throws(() => jsonPatch(node, plan as never), /test failed/);
  const fresh = planTaintRemoval(node.spec.taints, KEY);
  assert.deepEqual(jsonPatch(node, fresh as never), {
    spec: { taints: [{ key: "racer", effect: "NoExecute" }] },
  });
});

test("addition (continuous mode) appends, or adds the list under a resourceVersion test", () => {
  assert.equal(planTaintAddition([ours], "7", KEY), undefined);
  const appended = planTaintAddition([theirs], "7", KEY);
  assert.deepEqual(jsonPatch({ spec: { taints: [theirs] } }, appended as never), {
    spec: { taints: [theirs, ours] },
  });
  const created = planTaintAddition(undefined, "7", KEY);
  const node = { metadata: { resourceVersion: "7" }, spec: {} };
  assert.deepEqual(jsonPatch(node, created as never), {
    metadata: { resourceVersion: "7" },
    spec: { taints: [ours] },
  });
  assert.throws(
    () => jsonPatch({ ...node, metadata: { resourceVersion: "8" } }, created as never),
    /test failed/,
  );
});
