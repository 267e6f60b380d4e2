// The upgrade path to per-node NodeImages (issue 22), as during a DaemonSet rollout:
// - agents of the previous version (every PrePull watched, their entry in status.nodes) and of
//   the new one (their own NodeImages) in one cluster: every node's startup taint goes and the
//   elected controller's aggregate counts both kinds of report;
// - a new agent while the Lease is still held by an old one (no NodeImages written yet) keeps
//   its taint, saying why, and so does one whose NodeImages was matched for other labels; once
//   the controller's object for its labels is there, the taint goes.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type KubeAgent,
  loadKubeClient,
  nodeImagesSpec,
  type PrePull,
  startKubeAgent,
} from "../../src/kube/index.ts";
import { Metrics } from "../../src/observe/index.ts";
import { startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { heldImagesRuntime, runKubeScale } from "../fixtures/kube-scale.ts";
import { until } from "../fixtures/until.ts";

const TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";

describe("upgrade to per-node NodeImages", { timeout: 240_000 }, () => {
  test("old and new agents in one cluster: every taint goes, the aggregate counts both", async () => {
    const r = await runKubeScale({
      nodes: 6,
      report: (i) => (i % 2 === 0 ? "prepull" : "nodeimages"),
      timeoutMs: 120_000,
    });
    assert.ok(r.untaintedSeconds > 0, "every node's taint removed");
    assert.ok(r.aggregateSeconds > 0, "the aggregate said 6/6");
  });

  test("a new agent without its NodeImages, or with one for other labels, keeps the taint", async () => {
    const api = await startFakeApiServer();
    const work = await mkdtemp(join(tmpdir(), "ferry-kube-upgrade-"));
    let agent: KubeAgent | undefined;
    try {
      api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
      const labels = { pool: "new" };
      api.create({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "node-new", labels },
        spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
      });
      const prepull = {
        apiVersion: "ferry.dev/v1alpha1",
        kind: "PrePull",
        metadata: { name: "base", namespace: "ferry-system" },
        spec: { images: ["registry.example/base:1"], required: true },
      };
      api.create(prepull);
      const client = loadKubeClient({
        kubeconfig: (await api.kubeconfigFor("system:serviceaccount:ferry-system:ferry")).path,
        env: { POD_NAMESPACE: "ferry-system" },
      });
      agent = await startKubeAgent({
        client,
        nodeName: "node-new",
        namespace: "ferry-system",
        stateDir: work,
        startupTaintKey: TAINT,
        metrics: new Metrics(),
        log: () => {},
        resyncMs: 500,
        report: "nodeimages",
      });
      agent.wrapTarget(heldImagesRuntime());
      const a = agent;
      const heldBy = () => a.status().startupTaint?.heldBy?.join("; ") ?? "";
      await until("the taint held for the missing NodeImages", () =>
        /NodeImages node-new: not yet written/.test(heldBy()),
      );
      const tainted = () => {
        const node = api.get("v1", "Node", "node-new") as
          | { spec?: { taints?: { key: string }[] } }
          | undefined;
        return node?.spec?.taints?.some((t) => t.key === TAINT) === true;
      };
      assert.ok(tainted());
      // Matched for labels the node no longer has: not trusted.
      api.create({
        apiVersion: "ferry.dev/v1alpha1",
        kind: "NodeImages",
        metadata: { name: "node-new" },
        spec: nodeImagesSpec([prepull as PrePull], { pool: "old" }),
      } as never);
      await until("the taint held for other labels", () =>
        /written for other node labels/.test(heldBy()),
      );
      assert.ok(tainted());
      api.modify("ferry.dev/v1alpha1", "NodeImages", "node-new", undefined, (o) => {
        o["spec"] = nodeImagesSpec([prepull as PrePull], labels) as never;
      });
      await until("the taint removed", () => !tainted());
      const own = api.get("ferry.dev/v1alpha1", "NodeImages", "node-new") as {
        status?: { present?: number; total?: number };
      };
      assert.deepEqual([own.status?.present, own.status?.total], [1, 1]);
    } finally {
      await agent?.stop();
      await api.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});
