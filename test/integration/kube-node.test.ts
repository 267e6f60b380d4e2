// The Kubernetes node agent against the fake API server, a real containerd (CRI) and real
// registries: the startup taint stays until every required image is in containerd, a failed
// required image keeps it with a reason in the PrePull status, a concurrent taint change is
// retried and kept, a PrePull's pull secret is used for its image, the image filesystem's
// headroom is checked, and every API call the agent makes is allowed by the deployed RBAC.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { startKubeAgent } from "../../src/kube/index.ts";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { pushImage } from "../fixtures/images.ts";
import {
  deployedAgentRules,
  type FakeApiServer,
  type KubeObject,
  ruleAllows,
  startFakeApiServer,
} from "../fixtures/kube-apiserver.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { removeDir, tempDir, until } from "./cli.ts";
import { type InProcessNodeAgent, startInProcessNodeAgent } from "./kube-node-agent.ts";

const execFileAsync = promisify(execFile);
const TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
const AGENT_USER = "system:serviceaccount:ferry-system:ferry";
const USER = "puller";
const PASSWORD = "pull-secret-pass";

describe("Kubernetes node agent (fake API server, real containerd)", () => {
  let api: FakeApiServer;
  let open: RunningRegistry;
  let locked: RunningRegistry;
  let containerd: RunningContainerd;
  let work: string;
  let agentKubeconfig: string;
  const agents: InProcessNodeAgent[] = [];

  const kubectl = async (...args: string[]) =>
    (await execFileAsync("kubectl", ["--kubeconfig", api.kubeconfigPath, ...args])).stdout;
  /** Image names in containerd's CRI namespace. */
  const criImages = async () =>
    (await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"])).stdout
      .split("\n")
      .filter((l) => l !== "");

  const taintsOf = (node: string) =>
    (
      (
        api.get("v1", "Node", node)?.["spec"] as
          | { taints?: { key: string; value?: string; effect: string }[] }
          | undefined
      )?.taints ?? []
    ).map((t) => `${t.key}=${t.value ?? ""}:${t.effect}`);

  const startNodeAgent = async (
    node: string,
    extra: Partial<Parameters<typeof startKubeAgent>[0]> = {},
  ) => {
    const agent = await startInProcessNodeAgent({
      node,
      stateDir: join(work, node),
      kubeconfig: agentKubeconfig,
      containerdSocket: containerd.socket,
      startupTaintKey: TAINT,
      extra,
    });
    agents.push(agent);
    return agent;
  };

  const prepullStatus = (namespace: string, name: string) =>
    api.get("ferry.dev/v1alpha1", "PrePull", name, namespace)?.["status"] as
      | {
          nodes?: Record<
            string,
            {
              images: { image: string; state: string; reason?: string }[];
              present: number;
              total: number;
            }
          >;
          ready?: string;
        }
      | undefined;

  before(async () => {
    work = await tempDir("kube-node");
    const layers = [await busyboxLayer(["sh"])];
    [api, open, locked, containerd] = await Promise.all([
      startFakeApiServer(),
      startRegistry(),
      startRegistry({ htpasswd: { user: USER, password: PASSWORD } }),
      startContainerd(),
    ]);
    await Promise.all([
      pushImage(open.host, "base/tools", "v1", { layers }),
      pushImage(open.host, "apps/web", "v1", { layers }),
      pushImage(open.host, "apps/optional", "v1", { layers }),
      pushImage(locked.host, "private/app", "v1", { layers }, { creds: `${USER}:${PASSWORD}` }),
    ]);
    agentKubeconfig = (await api.kubeconfigFor(AGENT_USER)).path;
  });

  after(async () => {
    for (const a of agents) await a.stop().catch(() => {});
    await Promise.all([api?.stop(), open?.stop(), locked?.stop()]);
    await containerd?.stop();
    await removeDir(work);
  });

  test("the startup taint stays while a required image fails, goes once all are in containerd, and a racing taint is kept", async () => {
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-1", labels: { pool: "web" } },
      spec: {
        taints: [
          { key: "dedicated", value: "web", effect: "NoSchedule" },
          { key: TAINT, value: "pending", effect: "NoSchedule" },
        ],
      },
    });
    api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "base-images",
        namespace: "ferry-system",
        labels: { "ferry.dev/image-list": "true" },
      },
      data: {
        "images.yaml": `images:\n  - ${open.host}/base/tools:v1\n  - image: ${open.host}/apps/optional:v1\n    required: false\n`,
      },
    });
    const dockerconfig = {
      auths: { [locked.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } },
    };
    api.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "regcred", namespace: "apps" },
      type: "kubernetes.io/dockerconfigjson",
      data: { ".dockerconfigjson": Buffer.from(JSON.stringify(dockerconfig)).toString("base64") },
    });
    // kubectl as the user would: a PrePull with a pull secret and an image that does not exist
    const manifest = join(work, "prepull.yaml");
    const prepull = (images: string[]) =>
      [
        "apiVersion: ferry.dev/v1alpha1",
        "kind: PrePull",
        "metadata: {name: web, namespace: apps}",
        "spec:",
        "  required: true",
        "  nodeSelector: {pool: web}",
        "  imagePullSecrets: [{name: regcred}]",
        `  images: [${images.map((i) => JSON.stringify(i)).join(", ")}]`,
        "",
      ].join("\n");
    const missing = `${open.host}/apps/missing:v1`;
    await writeFile(manifest, prepull([`${locked.host}/private/app:v1`, missing]));
    await kubectl("apply", "-f", manifest);
    // another node's entry, to see that this agent never touches it
    api.modify("ferry.dev/v1alpha1", "PrePull", "web", "apps", (o: KubeObject) => {
      o["status"] = {
        nodes: { "node-0": { images: [], present: 0, total: 0, updated: "2026-01-01T00:00:00Z" } },
      };
    });

    // The first taint patch: check what containerd holds at that moment, and let kubectl add a
    // taint in between the agent's read and its patch.
    let heldAtPatch: string[] | undefined;
    let listingAtPatch = "";
    let raced = false;
    api.beforeRequest = async (call) => {
      if (call.user !== AGENT_USER || call.verb !== "patch" || call.resource !== "nodes") return;
      if (heldAtPatch === undefined) {
        heldAtPatch = await criImages();
        listingAtPatch = (await containerd.ctr(["-n", "k8s.io", "images", "ls"])).stdout;
      }
      if (!raced) {
        raced = true;
        await kubectl("taint", "nodes", "node-1", "racer=1:NoExecute");
      }
    };

    const agent = await startNodeAgent("node-1");
    const failed = await until("the missing image to be reported failed", () => {
      const images = prepullStatus("apps", "web")?.nodes?.["node-1"]?.images;
      const entry = images?.find((i) => i.image === missing);
      return entry?.state === "failed" &&
        images?.find((i) => i.image.includes("private/app"))?.state === "present"
        ? images
        : undefined;
    });
    assert.match(
      failed.find((i) => i.image === missing)?.reason ?? "",
      /missing|not found|FERRY_/i,
    );
    // everything else is in containerd (the private image with the PrePull's secret) …
    const held = await criImages();
    for (const name of [
      `${open.host}/base/tools:v1`,
      `${locked.host}/private/app:v1`,
      `${open.host}/apps/optional:v1`,
    ])
      assert.ok(held.includes(name), `${name} in containerd: ${held.join(", ")}`);
    // … but a required image is missing, so the taint stays
    assert.ok(taintsOf("node-1").includes(`${TAINT}=pending:NoSchedule`));
    assert.equal(heldAtPatch, undefined, "no taint patch yet");
    const status = prepullStatus("apps", "web");
    assert.equal(status?.nodes?.["node-1"]?.present, 1);
    assert.equal(status?.nodes?.["node-1"]?.total, 2);
    assert.ok(status?.nodes?.["node-0"], "the other node's entry is kept");
    assert.equal(status?.ready, "0/2");

    // the missing image is dropped from the PrePull: the taint goes, racing taint and all kept
    await writeFile(manifest, prepull([`${locked.host}/private/app:v1`]));
    await kubectl("apply", "-f", manifest);
    await until("the startup taint to be removed", () =>
      taintsOf("node-1").some((t) => t.startsWith(TAINT)) ? undefined : true,
    );
    assert.deepEqual(taintsOf("node-1").sort(), ["dedicated=web:NoSchedule", "racer=1:NoExecute"]);
    assert.ok(raced);
    for (const name of [`${open.host}/base/tools:v1`, `${locked.host}/private/app:v1`])
      assert.ok(
        (heldAtPatch as string[] | undefined)?.includes(name),
        `${name} was in containerd before the taint patch`,
      );
    // … and pinned against kubelet's image GC (containerd's CRI label)
    for (const name of [`${open.host}/base/tools:v1`, `${locked.host}/private/app:v1`]) {
      const line = listingAtPatch.split("\n").find((l) => l.startsWith(`${name} `));
      assert.match(
        line ?? "",
        /io\.cri-containerd\.pinned=pinned/,
        `${name} pinned before the taint patch`,
      );
    }
    const patches = api.calls.filter(
      (c) => c.user === AGENT_USER && c.verb === "patch" && c.resource === "nodes",
    );
    assert.ok(patches.length >= 2, "the patch that lost the race was retried");
    assert.ok(patches.every((c) => c.patchType === "application/json-patch+json"));
    assert.equal(patches[0]?.status, 422, "the first patch's test failed");
    await until("ready 1/2", () =>
      prepullStatus("apps", "web")?.ready === "1/2" ? true : undefined,
    );

    // events and metrics
    const reasons = await until("the StartupTaintRemoved event", () => {
      const all = api.list("v1", "Event").map((e) => e["reason"]);
      return all.includes("StartupTaintRemoved") ? all : undefined;
    });
    assert.ok(reasons.includes("PullFailed"), String(reasons));
    assert.ok(
      agent.metrics.value("ferry_kube_startup_taint_removed_seconds", { node: "node-1" }) > 0,
    );
    assert.equal(agent.metrics.value("ferry_kube_images_missing", { node: "node-1" }), 0);
    assert.ok(agent.kube.status().requiredTotal >= 2);

    // bootstrap mode: a required image gone from containerd does not bring the taint back
    api.beforeRequest = undefined;
    await containerd.ctr(["-n", "k8s.io", "images", "rm", `${open.host}/base/tools:v1`]);
    await until("the agent to see the image gone", () =>
      agent.kube.status().requiredPresent < agent.kube.status().requiredTotal ? true : undefined,
    );
    assert.ok(!taintsOf("node-1").some((t) => t.startsWith(TAINT)));
    await agent.stop();
    agents.splice(agents.indexOf(agent), 1);
  });

  test("headroom: a warm that would pass the image GC threshold is refused with a clear reason", async (t) => {
    const fs = join(work, "imagefs");
    await mkdir(fs, { recursive: true });
    try {
      await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", fs]);
    } catch (error) {
      t.skip(`cannot mount a tmpfs: ${String(error)}`);
      return;
    }
    try {
      // 80% full: under the 85% threshold, but the next image (1 MiB of 8) would pass it
      await writeFile(join(fs, "filler"), Buffer.alloc(Math.floor(8 * 1024 * 1024 * 0.8)));
      api.create({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "node-2", labels: { pool: "full" } },
        spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
      });
      api.create({
        apiVersion: "ferry.dev/v1alpha1",
        kind: "PrePull",
        metadata: { name: "big", namespace: "apps" },
        spec: {
          images: [`${open.host}/apps/web:v1`],
          required: true,
          nodeSelector: { pool: "full" },
        },
      });
      api.delete("v1", "ConfigMap", "base-images", "ferry-system");
      await startNodeAgent("node-2", {
        imageFsPath: fs,
        estimateBytes: async () => 1024 * 1024,
      });
      const entry = await until("the refusal in the PrePull status", () => {
        const images = prepullStatus("apps", "big")?.nodes?.["node-2"]?.images;
        return images?.[0]?.state === "failed" ? images[0] : undefined;
      });
      assert.match(
        entry.reason ?? "",
        /FERRY_DISK_FULL: .*above kubelet's image GC threshold of 85%/,
      );
      assert.ok(!(await criImages()).includes(`${open.host}/apps/web:v1`), "not pulled");
      assert.ok(taintsOf("node-2").includes(`${TAINT}=pending:NoSchedule`));
      const events = api.list("v1", "Event").filter((e) => e["reason"] === "HeadroomExceeded");
      assert.ok(events.length > 0);
      const condition = agents
        .at(-1)
        ?.kube.status()
        .conditions.find((c) => c.type === "ImageFilesystemHeadroom");
      assert.equal(condition?.reason, "HeadroomExceeded");
    } finally {
      for (const a of agents.splice(0)) await a.stop().catch(() => {});
      await execFileAsync("umount", [fs]).catch(() => {});
    }
  });
  test("continuous mode: the taint comes back when a required image leaves containerd, and goes when it returns", async () => {
    const image = `${open.host}/apps/optional:v1`;
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-3", labels: { pool: "steady" } },
      spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
    });
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "PrePull",
      metadata: { name: "steady", namespace: "apps" },
      spec: { images: [image], required: true, nodeSelector: { pool: "steady" } },
    });
    const agent = await startNodeAgent("node-3", { taintMode: "continuous" });
    const tainted = () => taintsOf("node-3").some((t) => t.startsWith(TAINT));
    await until("the taint to go", () => (tainted() ? undefined : true));
    await containerd.ctr(["-n", "k8s.io", "images", "rm", image]);
    await until("the taint to come back", () => (tainted() ? true : undefined));
    assert.deepEqual(taintsOf("node-3"), [`${TAINT}=pending:NoSchedule`]);
    const added = await until("the StartupTaintAdded event", () =>
      api.list("v1", "Event").find((e) => e["reason"] === "StartupTaintAdded"),
    );
    assert.match(String(added["message"]), /apps\/optional:v1/);
    await containerd.ctr(["-n", "k8s.io", "images", "pull", "--plain-http", image]);
    await until("the taint to go again", () => (tainted() ? undefined : true));
    await agent.stop();
    agents.splice(agents.indexOf(agent), 1);
  });
  test("every API call the node agents made is allowed by the RBAC rendered from deploy/kubernetes/base", async () => {
    const rules = await deployedAgentRules();
    const calls = api.calls.filter((c) => c.user === AGENT_USER);
    assert.ok(
      calls.some((c) => c.resource === "secrets" && c.verb === "get"),
      "the pull secret was read",
    );
    const denied = calls.filter((c) => !rules.some((r) => ruleAllows(r, c)));
    assert.deepEqual(
      [
        ...new Set(
          denied.map(
            (c) => `${c.verb} ${c.group}/${c.resource}${c.subresource ? `/${c.subresource}` : ""}`,
          ),
        ),
      ],
      [],
    );
  });
});
