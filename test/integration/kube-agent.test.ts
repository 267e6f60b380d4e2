// `ferry agent --kubernetes` as the DaemonSet runs it (a process with NODE_NAME and a
// kubeconfig; real containerd and registry; the fake API server): the node's startup taint
// goes once the ConfigMap's required image is in containerd, /status names the node, /metrics
// has the node's figures, and a gated Deployment's new image is pre-pulled. Then the RBAC
// check: every API call the agent made is allowed by the Role and ClusterRole rendered from
// deploy/kubernetes/base, and every verb they grant was used.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { pushImage } from "../fixtures/images.ts";
import {
  deployedAgentRules,
  ruleAllows,
  type FakeApiServer,
  startFakeApiServer,
} from "../fixtures/kube-apiserver.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { type FerryProcess, removeDir, startFerry, tempDir, until } from "./cli.ts";

const execFileAsync = promisify(execFile);
const TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
const AGENT_USER = "system:serviceaccount:ferry-system:ferry";
const NODE = "node-cli";

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("ferry agent --kubernetes", () => {
  let api: FakeApiServer;
  let registry: RunningRegistry;
  let containerd: RunningContainerd;
  let work: string;
  let agent: FerryProcess | undefined;
  let agentUrl: string;

  before(async () => {
    work = await tempDir("kube-agent");
    const layers = [await busyboxLayer(["sh"])];
    [api, registry, containerd] = await Promise.all([
      startFakeApiServer(),
      startRegistry(),
      startContainerd(),
    ]);
    await Promise.all(
      ["base/tools:v1", "apps/web:v1", "apps/web:v2", "apps/web:v3"].map((ref) => {
        const [name = "", tag = ""] = ref.split(":");
        return pushImage(registry.host, name, tag, {
          layers: [...layers, [{ path: `etc/${tag}`, content: tag }]],
        });
      }),
    );
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: NODE, labels: { "kubernetes.io/os": "linux" } },
      spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
    });
    api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "ferry-images",
        namespace: "ferry-system",
        labels: { "ferry.dev/image-list": "true" },
      },
      data: { "images.yaml": `images:\n  - ${registry.host}/base/tools:v1\n` },
    });
    api.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "apps", annotations: { "ferry.dev/prepull": "gate" } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "web", image: `${registry.host}/apps/web:v1` }] },
        },
      },
    });
    // a PrePull with a pull secret (read by name, as kubelet would)
    const auth = Buffer.from("user:pass").toString("base64");
    api.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "regcred", namespace: "apps" },
      type: "kubernetes.io/dockerconfigjson",
      data: {
        ".dockerconfigjson": Buffer.from(
          JSON.stringify({ auths: { [registry.host]: { auth } } }),
        ).toString("base64"),
      },
    });
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "PrePull",
      metadata: { name: "web", namespace: "apps" },
      spec: { images: [`${registry.host}/apps/web:v1`], imagePullSecrets: [{ name: "regcred" }] },
    });
    const kubeconfig = (await api.kubeconfigFor(AGENT_USER)).path;
    const port = await freePort();
    agentUrl = `http://127.0.0.1:${port}`;
    agent = startFerry(
      [
        "agent",
        "--kubernetes",
        "--target",
        "containerd",
        "--cri-endpoint",
        `unix://${containerd.socket}`,
        "--listen",
        `127.0.0.1:${port}`,
        "--image-fs",
        work,
        "--image-gc-high",
        "99",
      ],
      {
        NODE_NAME: NODE,
        POD_NAMESPACE: "ferry-system",
        KUBECONFIG: kubeconfig,
        TMPDIR: work,
        HOME: work,
      },
    );
  });

  after(async () => {
    if (agent !== undefined && agent.child.exitCode === null) {
      agent.child.kill("SIGTERM");
      await agent.result;
    }
    await Promise.all([api?.stop(), registry?.stop()]);
    await containerd?.stop();
    await removeDir(work);
  });

  const taints = () =>
    (
      (api.get("v1", "Node", NODE)?.["spec"] as { taints?: { key: string }[] } | undefined)
        ?.taints ?? []
    ).map((t) => t.key);

  test("the taint goes once the ConfigMap's image is in containerd; /status and /metrics name the node", async (t) => {
    await until(
      "the startup taint to go",
      async () => {
        if (agent?.child.exitCode !== null)
          assert.fail(`agent exited: ${(await agent?.result)?.stderr}`);
        return taints().includes(TAINT) ? undefined : true;
      },
      60_000,
    );
    const { stdout } = await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"]);
    assert.ok(stdout.includes(`${registry.host}/base/tools:v1`));
    const status = JSON.parse((await get(`${agentUrl}/status`)).body) as { node?: string };
    assert.equal(status.node, NODE);
    // Without kubernetes.report set, the node reports to its own NodeImages (the default).
    await until("the node's report in its NodeImages", () => {
      const own = api.get("ferry.dev/v1alpha1", "NodeImages", NODE)?.["status"] as
        | { images?: { image: string }[] }
        | undefined;
      return own?.images?.some((i) => i.image === `${registry.host}/apps/web:v1`);
    });
    const metrics = (await get(`${agentUrl}/metrics`)).body;
    assert.match(metrics, new RegExp(`ferry_kube_images_present\\{node="${NODE}"\\} [1-9]`));
    const removed = new RegExp(
      `ferry_kube_startup_taint_removed_seconds\\{node="${NODE}"\\} ([0-9.]+)`,
    ).exec(metrics);
    assert.ok(removed, "taint removal time since node creation");
    t.diagnostic(`startup taint removed ${removed[1]} s after the node was created`);
  });

  test("a gated Deployment's new image is pulled into containerd", async () => {
    api.modify("apps/v1", "Deployment", "web", "apps", (o) => {
      const spec = o["spec"] as { template: { spec: { containers: { image: string }[] } } };
      const container = spec.template.spec.containers[0];
      if (container) container.image = `${registry.host}/apps/web:v2`;
    });
    const status = await until("the PrePull's status for this node", () => {
      const s = api.get("ferry.dev/v1alpha1", "PrePull", "web", "apps")?.["status"] as
        | { ready?: string }
        | undefined;
      return s?.ready === "1/1" ? s : undefined;
    });
    assert.equal(status.ready, "1/1");
    await until(
      "the new image in containerd",
      async () =>
        (await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"])).stdout.includes(
          `${registry.host}/apps/web:v2`,
        )
          ? true
          : undefined,
      60_000,
    );
  });

  test("RBAC: every call the agent made is allowed by the deployed rules, and every granted verb was used", async (t) => {
    assert.ok(agent);
    agent.child.kill("SIGTERM");
    const result = await agent.result;
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const rules = await deployedAgentRules();
    const calls = api.calls.filter((c) => c.user === AGENT_USER);
    assert.ok(calls.length > 0);
    const denied = calls.filter((c) => !rules.some((r) => ruleAllows(r, c)));
    assert.deepEqual(
      [
        ...new Set(
          denied.map(
            (c) =>
              `${c.verb} ${c.group}/${c.resource}${c.subresource ? `/${c.subresource}` : ""} in ${c.namespace ?? "(cluster)"}`,
          ),
        ),
      ],
      [],
      "calls the deployed RBAC would refuse",
    );
    const unused: string[] = [];
    for (const rule of rules)
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs) {
            const [res, sub] = resource.split("/");
            const used = calls.some(
              (c) =>
                c.group === group &&
                c.resource === res &&
                c.subresource === sub &&
                c.verb === verb &&
                (rule.namespace === undefined || c.namespace === rule.namespace),
            );
            if (!used) unused.push(`${rule.from}: ${verb} ${group}/${resource}`);
          }
    // Granted for paths this run does not reach; each names who uses it. Anything else unused
    // fails the test (trim the rule or exercise it).
    const elsewhere: Record<string, string> = {
      "ClusterRole/ferry-agent: delete ferry.dev/prepulls":
        "workload controller: rollout PrePulls removed when done",
      "ClusterRole/ferry-agent: get ferry.dev/prepulls":
        "agents with kubernetes.report prepull: re-read after a 409 on their status.nodes entry",
      "ClusterRole/ferry-agent: get apps/deployments":
        "rollout gate: re-read after a 409 on its patch",
      "Role/ferry-agent: list discovery.k8s.io/endpointslices":
        "peer membership (issue 11), not wired into the agent yet",
      "Role/ferry-agent: watch discovery.k8s.io/endpointslices":
        "peer membership (issue 11), not wired into the agent yet",
      "ClusterRole/ferry-agent: patch ferry.dev/nodeimages":
        "NodeImages controller: a node's spec when its PrePulls change (kube-scale, kube-upgrade tests)",
      "ClusterRole/ferry-agent: delete ferry.dev/nodeimages":
        "NodeImages controller: the object of a node gone from the API",
      "ClusterRole/ferry-agent: patch ferry.dev/nodeimages/status":
        "agents with kubernetes.report nodeimages (the DaemonSet's agent.yaml; kube-scale test)",
    };
    for (const u of unused) if (u in elsewhere) t.diagnostic(`unused here: ${u} (${elsewhere[u]})`);
    assert.deepEqual(
      unused.filter((u) => !(u in elsewhere)),
      [],
      "verbs granted that no call used",
    );
  });

  test("headroom: on an image filesystem at 80%, an image that would take it past 85% is refused", async (t) => {
    const fs = join(work, "imagefs");
    await mkdir(fs, { recursive: true });
    try {
      await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", fs]);
    } catch (error) {
      t.skip(`cannot mount a tmpfs: ${String(error)}`);
      return;
    }
    let full: FerryProcess | undefined;
    try {
      await writeFile(join(fs, "filler"), Buffer.alloc(Math.floor(8 * 1024 * 1024 * 0.8)));
      api.create({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "node-full", labels: { disk: "full" } },
      });
      api.create({
        apiVersion: "ferry.dev/v1alpha1",
        kind: "PrePull",
        metadata: { name: "full", namespace: "apps" },
        spec: { images: [`${registry.host}/apps/web:v3`], nodeSelector: { disk: "full" } },
      });
      const kubeconfig = (await api.kubeconfigFor("full-node-agent")).path;
      // this time from agent.yaml's kubernetes: section instead of flags
      const config = join(work, "agent.yaml");
      await writeFile(
        config,
        [
          "targets: [containerd]",
          `criEndpoint: unix://${containerd.socket}`,
          "listen: 127.0.0.1:0",
          "kubernetes:",
          "  enabled: true",
          `  kubeconfig: ${kubeconfig}`,
          `  imageFs: ${fs}`,
          "  imageGCHighThresholdPercent: 85",
          "  workloadPrePull: false",
          // The previous version's report, still selectable during an upgrade.
          "  report: prepull",
          "",
        ].join("\n"),
      );
      full = startFerry(["agent", "-c", config], {
        NODE_NAME: "node-full",
        POD_NAMESPACE: "ferry-system",
        TMPDIR: work,
        HOME: work,
      });
      const entry = await until("the refusal in the PrePull status", () => {
        const s = api.get("ferry.dev/v1alpha1", "PrePull", "full", "apps")?.["status"] as
          | { nodes?: Record<string, { images: { state: string; reason?: string }[] }> }
          | undefined;
        const image = s?.nodes?.["node-full"]?.images[0];
        return image?.state === "failed" ? image : undefined;
      });
      assert.match(
        entry.reason ?? "",
        /FERRY_DISK_FULL: not warming .*above kubelet's image GC threshold of 85%/,
      );
      const { stdout } = await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"]);
      assert.ok(!stdout.includes(`${registry.host}/apps/web:v3`));
    } finally {
      if (full !== undefined && full.child.exitCode === null) {
        full.child.kill("SIGTERM");
        await full.result;
      }
      await execFileAsync("umount", [fs]).catch(() => {});
    }
  });
});
