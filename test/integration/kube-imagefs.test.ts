// Headroom where the runtime says its images are: containerd answers CRI ImageFsInfo with its
// snapshotter's mountpoint, and an agent given no --image-fs checks that filesystem (a real
// tmpfs, 80% full, mounted there) before a pull, refusing one that would pass kubelet's GC
// threshold. Real containerd; the fake API server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { CriTarget } from "../../src/runtime/index.ts";
import { startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { startContainerd } from "../fixtures/runtimes.ts";
import { until } from "../fixtures/until.ts";
import { startInProcessNodeAgent } from "./kube-node-agent.ts";

const execFileAsync = promisify(execFile);
const TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";

describe("headroom on the runtime's image filesystem (CRI ImageFsInfo)", {
  timeout: 120_000,
}, () => {
  test("containerd names its image filesystem; the agent checks it when none is configured", async (t) => {
    const [api, containerd] = await Promise.all([startFakeApiServer(), startContainerd()]);
    const work = await mkdtemp(join(tmpdir(), "ferry-kube-imagefs-"));
    let mounted: string | undefined;
    let stop: (() => Promise<void>) | undefined;
    try {
      const cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
      const filesystems = await cri.imageFilesystems().finally(() => cri.close());
      const fs = filesystems[0]?.mountpoint ?? "";
      assert.ok(fs.startsWith(containerd.root), `${fs} is under containerd's root`);
      try {
        await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", fs]);
      } catch (error) {
        t.skip(`cannot mount a tmpfs: ${String(error)}`);
        return;
      }
      mounted = fs;
      // 80% full: under the 85% threshold, but the next image (1 MiB of 8) would pass it
      await writeFile(join(fs, "filler"), Buffer.alloc(Math.floor(8 * 1024 * 1024 * 0.8)));
      api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
      api.create({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "node-fs", labels: { pool: "fs" } },
        spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
      });
      // Refused before the runtime is asked to pull, so the registry is never contacted.
      const image = "127.0.0.1:9/apps/web:v1";
      api.create({
        apiVersion: "ferry.dev/v1alpha1",
        kind: "PrePull",
        metadata: { name: "big", namespace: "ferry-system" },
        spec: { images: [image], required: true },
      });
      const agent = await startInProcessNodeAgent({
        node: "node-fs",
        stateDir: join(work, "state"),
        kubeconfig: (await api.kubeconfigFor("system:serviceaccount:ferry-system:ferry")).path,
        containerdSocket: containerd.socket,
        startupTaintKey: TAINT,
        extra: { imageFsFromRuntime: true, estimateBytes: async () => 1024 * 1024 },
      });
      stop = () => agent.stop();
      const entry = await until("the refusal in the PrePull status", () => {
        const status = api.get("ferry.dev/v1alpha1", "PrePull", "big", "ferry-system")?.[
          "status"
        ] as { nodes?: Record<string, { images: { state: string; reason?: string }[] }> };
        const first = status?.nodes?.["node-fs"]?.images[0];
        return first?.state === "failed" ? first : undefined;
      });
      assert.match(entry.reason ?? "", /FERRY_DISK_FULL: .*above kubelet's image GC threshold/);
      assert.ok((entry.reason ?? "").includes(fs), "the runtime's filesystem is named");
    } finally {
      await stop?.().catch(() => {});
      if (mounted !== undefined) await execFileAsync("umount", [mounted]).catch(() => {});
      await containerd.stop();
      await api.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});
