import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1CronJob, V1Deployment, V1PodSpec } from "@kubernetes/client-node";
import {
  imageSetHash,
  imagesChanged,
  newTemplateImages,
  podSpecImages,
  rolloutInProgress,
  rolloutName,
  toWorkload,
  WORKLOAD_KINDS,
  type WorkloadKind,
  type WorkloadObject,
} from "./workload.ts";

const spec: V1PodSpec = {
  initContainers: [{ name: "init", image: "reg/init:1" }],
  containers: [
    { name: "app", image: "reg/app:1" },
    { name: "side", image: "reg/side:1" },
    { name: "again", image: "reg/app:1" },
  ],
  ephemeralContainers: [{ name: "debug", image: "reg/debug:1" }],
};

function objectOf(kind: WorkloadKind, podSpec: V1PodSpec): WorkloadObject {
  const metadata = { name: "w", namespace: "ns", uid: "u1", resourceVersion: "7" };
  if (kind === "CronJob") {
    const cron: V1CronJob = {
      metadata,
      spec: { schedule: "* * * * *", jobTemplate: { spec: { template: { spec: podSpec } } } },
    };
    return cron;
  }
  const selector = { matchLabels: { app: "w" } };
  return { metadata, spec: { selector, template: { spec: podSpec } } } as V1Deployment;
}

describe("workload images", () => {
  it("takes containers and initContainers, not ephemeral ones, without duplicates", () => {
    assert.deepEqual(podSpecImages(spec), ["reg/app:1", "reg/side:1", "reg/init:1"]);
  });

  for (const kind of WORKLOAD_KINDS) {
    it(`reads the pod template of a ${kind}`, () => {
      const w = toWorkload(kind, objectOf(kind, spec));
      assert.equal(w.kind, kind);
      assert.equal(w.namespace, "ns");
      assert.equal(w.name, "w");
      assert.deepEqual(w.images, ["reg/app:1", "reg/side:1", "reg/init:1"]);
    });
  }

  it("has no images without a template", () => {
    assert.deepEqual(toWorkload("Deployment", { metadata: { name: "x" } }).images, []);
    assert.deepEqual(podSpecImages(undefined), []);
  });

  it("detects a template image change, ignoring order and duplicates", () => {
    assert.equal(imagesChanged(["a", "b"], ["b", "a", "a"]), false);
    assert.equal(imagesChanged(["a", "b"], ["a", "c"]), true);
    assert.equal(imagesChanged(["a"], ["a", "b"]), true);
    assert.equal(imagesChanged(["a", "b"], ["a"]), true);
    assert.deepEqual(newTemplateImages(["a", "b"], ["a", "c", "d"]), ["c", "d"]);
    assert.deepEqual(newTemplateImages(["a"], ["a"]), []);
  });

  it("names a rollout after the workload and its image set", () => {
    const name = rolloutName({ kind: "Deployment", name: "web" }, ["b:1", "a:1"]);
    assert.equal(name, `web-deploy-${imageSetHash(["a:1", "b:1"])}`);
    assert.notEqual(name, rolloutName({ kind: "Deployment", name: "web" }, ["a:2", "b:1"]));
    assert.notEqual(name, rolloutName({ kind: "StatefulSet", name: "web" }, ["a:1", "b:1"]));
    const long = rolloutName({ kind: "CronJob", name: `${"x".repeat(250)}.y` }, ["a"]);
    assert.ok(long.length <= 253);
    assert.match(long, /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/);
  });
});

describe("rollout in progress", () => {
  const meta = { name: "w", generation: 3 };
  it("says nothing for an object without status", () => {
    assert.equal(rolloutInProgress("Deployment", { metadata: meta }), false);
    assert.equal(rolloutInProgress("StatefulSet", { metadata: meta }), false);
    assert.equal(rolloutInProgress("DaemonSet", { metadata: meta }), false);
  });

  it("sees an unobserved generation", () => {
    const status = { observedGeneration: 2, updatedReplicas: 3 };
    assert.equal(
      rolloutInProgress("Deployment", { metadata: meta, spec: { replicas: 3 } as never, status }),
      true,
    );
    const sts = { observedGeneration: 2, replicas: 1 };
    assert.equal(rolloutInProgress("StatefulSet", { metadata: meta, status: sts }), true);
  });

  it("sees replicas not yet updated", () => {
    const spec = { replicas: 3 } as never;
    assert.equal(
      rolloutInProgress("Deployment", {
        metadata: meta,
        spec,
        status: { observedGeneration: 3, updatedReplicas: 1 },
      }),
      true,
    );
    assert.equal(
      rolloutInProgress("Deployment", {
        metadata: meta,
        spec,
        status: { observedGeneration: 3, updatedReplicas: 3 },
      }),
      false,
    );
    const ds = (updated: number) => ({
      observedGeneration: 3,
      updatedNumberScheduled: updated,
      desiredNumberScheduled: 4,
      currentNumberScheduled: 4,
      numberMisscheduled: 0,
      numberReady: 4,
    });
    assert.equal(rolloutInProgress("DaemonSet", { metadata: meta, status: ds(2) }), true);
    assert.equal(rolloutInProgress("DaemonSet", { metadata: meta, status: ds(4) }), false);
    const sts = (update: string) => ({
      observedGeneration: 3,
      replicas: 2,
      currentRevision: "r1",
      updateRevision: update,
    });
    assert.equal(rolloutInProgress("StatefulSet", { metadata: meta, status: sts("r2") }), true);
    assert.equal(rolloutInProgress("StatefulSet", { metadata: meta, status: sts("r1") }), false);
  });

  it("never for Jobs and CronJobs", () => {
    assert.equal(rolloutInProgress("Job", { metadata: meta, status: {} }), false);
    assert.equal(rolloutInProgress("CronJob", { metadata: meta, status: {} }), false);
  });
});
