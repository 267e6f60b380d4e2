// Review findings in Kubernetes mode, each against the fake API server (and a real containerd
// and registry where images are involved):
// - an image-list ConfigMap that does not parse keeps the startup taint on (fail closed), with a
//   condition and an Event saying why; fixed, the taint goes once its images are in containerd;
// - so does a list file (-f) that fails to load;
// - a node carrying a NoExecute taint with `timeAdded` (as the node controller sets it) loses
//   only ferry's taint: the patch's `test` matches what the API server stored;
// - a quiet watch (no events, no BOOKMARKs) is not given up and relisted after 30 s;
// - stop() while a watch request is on its way leaves no watch open.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { CoreV1Api } from "@kubernetes/client-node";
import { type KubeAgent, loadKubeClient } from "../../src/kube/index.ts";
import { CollectionWatch } from "../../src/kube/watcher.ts";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { pushImage } from "../fixtures/images.ts";
import { type FakeApiServer, startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { removeDir, tempDir, until } from "./cli.ts";
import { startInProcessNodeAgent } from "./kube-node-agent.ts";

const TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
const AGENT_USER = "system:serviceaccount:ferry-system:ferry";
/** client-node's Watch gives up on a stream after this long without data */
const CLIENT_WATCH_IDLE_MS = 30_000;

type Taint = {
  key: string;
  value?: string;
  effect: string;
  timeAdded?: string;
};

describe("Kubernetes mode: review findings", () => {
  let api: FakeApiServer;
  /** no BOOKMARKs within the test's life: a watch on it stays quiet */
  let quietApi: FakeApiServer;
  let registry: RunningRegistry;
  let containerd: RunningContainerd;
  let work: string;
  let quiet: CollectionWatch<V1ConfigMap> | undefined;
  const quietErrors: unknown[] = [];
  let quietItems: string[] = [];
  let quietSince = 0;
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    work = await tempDir("kube-review");
    const layers = [await busyboxLayer(["sh"])];
    [api, quietApi, registry, containerd] = await Promise.all([
      startFakeApiServer(),
      startFakeApiServer({ bookmarkIntervalMs: 3_600_000 }),
      startRegistry(),
      startContainerd(),
    ]);
    await Promise.all(
      ["review/listed:v1", "review/prepulled:v1"].map((ref) => {
        const [name = "", tag = ""] = ref.split(":");
        return pushImage(registry.host, name, tag, {
          layers: [...layers, [{ path: `etc/${name.replace("/", "-")}`, content: ref }]],
        });
      }),
    );
    for (const a of [api, quietApi])
      a.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
    // The quiet watch runs while the other tests do; the last test looks at what it did.
    const kubeconfig = (await quietApi.kubeconfigFor(AGENT_USER)).path;
    const config = loadKubeClient({ kubeconfig }).config;
    const core = config.makeApiClient(CoreV1Api);
    quiet = new CollectionWatch<V1ConfigMap>({
      config,
      path: "/api/v1/namespaces/ferry-system/configmaps",
      list: () => core.listNamespacedConfigMap({ namespace: "ferry-system" }),
      onChange: (items) => {
        quietItems = items.map((c) => c.metadata?.name ?? "");
      },
      onError: (error) => quietErrors.push(error),
    });
    await quiet.start();
    quietSince = Date.now();
  });

  after(async () => {
    quiet?.stop();
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await Promise.all([api?.stop(), quietApi?.stop(), registry?.stop()]);
    await containerd?.stop();
    await removeDir(work);
  });

  const startNodeAgent = async (
    node: string,
    baseListFile?: string,
  ): Promise<{ kube: KubeAgent; logs: Record<string, unknown>[] }> => {
    const agent = await startInProcessNodeAgent({
      node,
      stateDir: join(work, node),
      kubeconfig: (await api.kubeconfigFor(AGENT_USER)).path,
      containerdSocket: containerd.socket,
      startupTaintKey: TAINT,
      extra: { baseListFile },
    });
    stops.push(() => agent.stop());
    return agent;
  };

  const taintsOf = (node: string): Taint[] =>
    (api.get("v1", "Node", node)?.["spec"] as { taints?: Taint[] } | undefined)?.taints ?? [];
  const nodeEvents = (node: string, reason: string) =>
    api
      .list("v1", "Event", "ferry-system")
      .filter((e) => {
        const o = e["involvedObject"] as { kind?: string; name?: string } | undefined;
        return o?.kind === "Node" && o.name === node && e["reason"] === reason;
      })
      .map((e) => String(e["message"]));
  const criImages = async () =>
    (await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"])).stdout.split("\n");

  test("a ConfigMap with a YAML typo keeps the startup taint (and says why); fixed, the taint goes once its image is in containerd", async () => {
    const node = "node-lists";
    const listed = `${registry.host}/review/listed:v1`;
    const prepulled = `${registry.host}/review/prepulled:v1`;
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: node, labels: { review: "lists" } },
      spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
    });
    // a readable required image, so that every readable list is satisfied at some point
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "PrePull",
      metadata: { name: "lists", namespace: "ferry-system" },
      spec: { images: [prepulled], required: true, nodeSelector: { review: "lists" } },
    });
    api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "typo",
        namespace: "ferry-system",
        labels: { "ferry.dev/image-list": "true" },
      },
      // the second entry's quote is never closed
      data: { "images.yaml": `images:\n  - ${listed}\n  - "${listed}\n` },
    });
    const { kube } = await startNodeAgent(node);
    // Every readable required image present: the point at which the taint would go.
    await until(
      "the taint to go, or the agent to say why it stays",
      () =>
        !taintsOf(node).some((t) => t.key === TAINT) ||
        nodeEvents(node, "StartupTaintKept").length > 0
          ? true
          : undefined,
      60_000,
    );
    assert.ok(
      taintsOf(node).some((t) => t.key === TAINT),
      "the taint stays while an image-list ConfigMap cannot be read",
    );
    assert.ok((await criImages()).includes(prepulled));
    assert.match(nodeEvents(node, "StartupTaintKept")[0] ?? "", /configmap\/ferry-system\/typo/);
    const status = kube.status();
    const condition = status.conditions.find((c) => c.type === "ImageListsReadable");
    assert.equal(condition?.status, "False");
    assert.equal(condition?.reason, "ImageListUnreadable");
    assert.match(condition?.message ?? "", /configmap\/ferry-system\/typo/);
    assert.match((status.startupTaint?.heldBy ?? []).join("\n"), /configmap\/ferry-system\/typo/);

    api.modify("v1", "ConfigMap", "typo", "ferry-system", (o) => {
      o["data"] = { "images.yaml": `images:\n  - ${listed}\n` };
    });
    await until(
      "the taint to go once the fixed list's image is in containerd",
      () => (taintsOf(node).some((t) => t.key === TAINT) ? undefined : true),
      60_000,
    );
    assert.ok((await criImages()).includes(listed), "the fixed list's image came first");
    assert.equal(
      kube.status().conditions.find((c) => c.type === "ImageListsReadable"),
      undefined,
    );
  });

  test("a list file (-f) that does not load keeps the startup taint; fixed, it goes", async () => {
    const node = "node-file";
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: node },
      spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
    });
    const file = join(work, "node-file.yaml");
    await writeFile(file, `images:\n  - [${registry.host}/review/listed:v1\n`);
    await startNodeAgent(node, file);
    await until(
      "the taint to go, or the agent to say why it stays",
      () =>
        !taintsOf(node).some((t) => t.key === TAINT) ||
        nodeEvents(node, "StartupTaintKept").length > 0
          ? true
          : undefined,
      60_000,
    );
    assert.ok(
      taintsOf(node).some((t) => t.key === TAINT),
      "the taint stays",
    );
    assert.ok(nodeEvents(node, "StartupTaintKept")[0]?.includes(file));
    await writeFile(file, `images:\n  - ${registry.host}/review/listed:v1\n`);
    await until(
      "the taint to go once the file loads",
      () => (taintsOf(node).some((t) => t.key === TAINT) ? undefined : true),
      60_000,
    );
  });

  test("a node with a NoExecute taint carrying timeAdded (as the node controller sets it) loses only the startup taint", async () => {
    const node = "node-noexec";
    // as kube-apiserver stores and serves it: RFC 3339, whole seconds
    const notReady: Taint = {
      key: "node.kubernetes.io/not-ready",
      effect: "NoExecute",
      timeAdded: "2026-11-23T22:00:00Z",
    };
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: node, labels: { review: "noexec" } },
      spec: { taints: [notReady, { key: TAINT, value: "pending", effect: "NoSchedule" }] },
    });
    const { logs } = await startNodeAgent(node);
    await until(
      "the startup taint to go, or the agent to give up on the patch",
      () =>
        !taintsOf(node).some((t) => t.key === TAINT) ||
        logs.some((l) => /kept changing/.test(String(l["error"])))
          ? true
          : undefined,
      60_000,
    );
    assert.deepEqual(taintsOf(node), [notReady], "only ferry's taint went; timeAdded untouched");
    const patches = api.calls.filter(
      (c) => c.verb === "patch" && c.resource === "nodes" && c.name === node,
    );
    assert.deepEqual(
      patches.map((c) => c.status),
      [200],
      "one patch, whose test matched the first time",
    );
  });

  test("stop() while the watch request is on its way leaves no watch open", async () => {
    const server = await startFakeApiServer();
    try {
      server.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
      const config = loadKubeClient({
        kubeconfig: (await server.kubeconfigFor(AGENT_USER)).path,
      }).config;
      const core = config.makeApiClient(CoreV1Api);
      const watch: CollectionWatch<V1ConfigMap> = new CollectionWatch<V1ConfigMap>({
        config,
        path: "/api/v1/namespaces/ferry-system/configmaps",
        list: () => core.listNamespacedConfigMap({ namespace: "ferry-system" }),
        onChange: () => {},
        onError: () => {},
      });
      // the list is done, the watch request has reached the server: stop now
      server.beforeRequest = (call) => {
        if (call.verb === "watch") watch.stop();
      };
      await watch.start();
      assert.ok(
        server.calls.some((c) => c.verb === "watch"),
        "the watch request reached the server",
      );
      await until(
        "the server to see the watch closed",
        () => (server.openWatches() === 0 ? true : undefined),
        10_000,
      );
    } finally {
      await server.stop();
    }
  });

  // Last: by now the watch started in before() has been quiet for a while.
  test("a quiet watch (no events, no BOOKMARKs) outlives client-node's 30 s idle timeout without a relist", async () => {
    assert.ok(quiet);
    const calls = (verb: string) =>
      quietApi.calls.filter((c) => c.verb === verb && c.resource === "configmaps").length;
    // client-node's 30 s idle timer runs on the socket, so real time must pass it; a failure,
    // relist or second watch ends the wait at once (the assertions below then say which).
    const idlePassed = quietSince + CLIENT_WATCH_IDLE_MS + 3_000;
    await until(
      "the quiet watch past client-node's idle timeout, or its failure",
      () =>
        quietErrors.length > 0 ||
        calls("list") > 1 ||
        calls("watch") > 1 ||
        quietApi.openWatches() !== 1 ||
        Date.now() > idlePassed,
      CLIENT_WATCH_IDLE_MS + 30_000,
    );
    assert.deepEqual(quietErrors.map(String), [], "no watch failure reported");
    assert.equal(calls("list"), 1, "listed once");
    assert.equal(calls("watch"), 1, "one watch, still open");
    assert.equal(quietApi.openWatches(), 1);
    // and it still delivers
    quietApi.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "after-quiet", namespace: "ferry-system" },
      data: {},
    });
    await until("the change through the same watch", () =>
      quietItems.includes("after-quiet") ? true : undefined,
    );
    assert.equal(calls("list"), 1, "still listed once");
  });
});
