// Issue 22: an agent reporting to its NodeImages learns a rollout's images from its own object
// (the elected controller writes the grants there), so its workload half never lists or watches
// the rollout PrePulls; an agent of the previous version ("prepull") still does.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import {
  type ReportMode,
  startWorkloadPrePull,
  type WorkloadPrePull,
} from "../../src/kube/index.ts";
import { type FakeApiServer, startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { heldImagesRuntime } from "../fixtures/kube-scale.ts";
import { until } from "../fixtures/until.ts";

const NS = "ferry-system";

describe("workload pre-pull per report mode", { timeout: 60_000 }, () => {
  let api: FakeApiServer;
  const instances: WorkloadPrePull[] = [];

  const start = async (
    user: string,
    report?: ReportMode,
    extra: Partial<Parameters<typeof startWorkloadPrePull>[0]> = {},
  ) => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile((await api.kubeconfigFor(user)).path);
    const instance = await startWorkloadPrePull({
      kubeConfig,
      nodeName: user,
      namespace: NS,
      identity: user,
      target: heldImagesRuntime(),
      leaseDurationMs: 60_000,
      ...(report === undefined ? {} : { report }),
      ...extra,
    });
    instances.push(instance);
    return instance;
  };
  const prepullCalls = (user: string) =>
    api.calls.filter((c) => c.user === user && c.resource === "prepulls").map((c) => c.verb);

  before(async () => {
    api = await startFakeApiServer();
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    // The leader (its controller watches the PrePulls) is another instance.
    const leader = await start("leader", "nodeimages");
    await until("a leader", () => leader.isLeader(), 30_000);
  });

  after(async () => {
    await Promise.allSettled(instances.map((i) => i.stop()));
    await api?.stop();
  });

  test("nodeimages: the node half reads no PrePull", async () => {
    // start() resolves after the node half's first list: whatever it reads is read by now.
    const node = await start("node-new", "nodeimages");
    assert.equal(node.isLeader(), false);
    assert.deepEqual(prepullCalls("node-new"), []);
  });

  test("prepull (the previous version's way, the default here): the node half lists and watches every rollout PrePull", async () => {
    const node = await start("node-old");
    assert.equal(node.isLeader(), false);
    assert.ok(prepullCalls("node-old").includes("list"), JSON.stringify(prepullCalls("node-old")));
  });

  test("without workload pre-pull the leader still writes the nodes' NodeImages, and watches no workload", async () => {
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-r", labels: { pool: "r" } },
    });
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "PrePull",
      metadata: { name: "base", namespace: NS },
      spec: { images: ["registry.example/base:1"], required: true, nodeSelector: { pool: "r" } },
    });
    // Its own Lease: the instance started first leads the default one.
    const solo = await start("solo", "nodeimages", { rollouts: false, leaseName: "solo" });
    await until("the leader", () => solo.isLeader(), 30_000);
    await until(
      "node-r's NodeImages",
      () => {
        const spec = api.get("ferry.dev/v1alpha1", "NodeImages", "node-r")?.["spec"] as
          | { images?: { image: string }[] }
          | undefined;
        return spec?.images?.some((i) => i.image === "registry.example/base:1");
      },
      30_000,
    );
    const workloads = api.calls.filter(
      (c) =>
        c.user === "solo" &&
        ["deployments", "daemonsets", "statefulsets", "jobs", "cronjobs"].includes(c.resource),
    );
    assert.deepEqual(workloads, []);
  });
});
