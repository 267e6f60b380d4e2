// Workload pre-pull and the rollout gate, end to end: the fake API server (both agents'
// controllers and node halves talk to it over the real wire protocol), two "nodes" each with
// its own real containerd (pulled through the CRI), real registries (one needing a pull secret).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import {
  GateReason,
  startWorkloadPrePull,
  type WorkloadPrePull,
  type WorkloadPrePullEvent,
} from "../../src/kube/workload/index.ts";
import { CriTarget } from "../../src/runtime/index.ts";
import { type FileSpec, pushImage } from "../fixtures/images.ts";
import {
  type ApiCall,
  type FakeApiServer,
  type KubeObject,
  startFakeApiServer,
} from "../fixtures/kube-apiserver.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { until } from "../fixtures/until.ts";

const NS = "apps";
const AGENT_NS = "ferry-system";
const STARTUP_TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
const USER = "puller";
const PASSWORD = "s3cret-pw";
const WAIT_MS = 60_000;
/** Writes only the elected instance makes (node halves write prepulls/status only). */
const CONTROLLER_WRITES = new Set(["create", "update", "patch", "delete"]);

interface Agent {
  node: string;
  user: string;
  instance: WorkloadPrePull;
  events: WorkloadPrePullEvent[];
}

const waitFor = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) =>
  until(what, probe, WAIT_MS);

function layer(seed: string): FileSpec[][] {
  return [
    [
      { path: `etc/${seed}`, content: `${seed}\n` },
      { path: "data/blob", size: 64 * 1024, seed },
    ],
  ];
}

function deployment(
  name: string,
  image: string,
  extra: { gate?: boolean; nodeSelector?: Record<string, string> },
) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name,
      namespace: NS,
      ...(extra.gate ? { annotations: { "ferry.dev/prepull": "gate" } } : {}),
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
          containers: [{ name: "main", image }],
        },
      },
    },
  } as KubeObject;
}

function setImage(o: KubeObject, image: string): void {
  const spec = o["spec"] as { template: { spec: { containers: { image: string }[] } } };
  const container = spec.template.spec.containers[0];
  if (container) container.image = image;
}

describe("kube workload pre-pull", { timeout: 240_000 }, () => {
  let api: FakeApiServer;
  let open: RunningRegistry;
  let locked: RunningRegistry;
  const containerd = new Map<string, RunningContainerd>();
  const agents: Agent[] = [];
  let images: { web2: string; web3: string; plain2: string; logs2: string; mid: string };

  const inRuntime = async (node: string, image: string): Promise<boolean> => {
    const { stdout } = await (containerd.get(node) as RunningContainerd).ctr([
      "-n",
      "k8s.io",
      "images",
      "ls",
      "-q",
    ]);
    return stdout.split("\n").includes(image);
  };

  const startAgent = async (node: string, user: string): Promise<Agent> => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile((await api.kubeconfigFor(user)).path);
    const events: WorkloadPrePullEvent[] = [];
    const instance = await startWorkloadPrePull({
      kubeConfig,
      nodeName: node,
      namespace: AGENT_NS,
      identity: user,
      target: new CriTarget({
        endpoint: `unix://${(containerd.get(node) as RunningContainerd).socket}`,
      }),
      leaseDurationMs: 6_000,
      resyncMs: 250,
      gateTimeoutMs: 120_000,
      budget: 1,
      onEvent: (e) => events.push(e),
    });
    const agent = { node, user, instance, events };
    agents.push(agent);
    return agent;
  };

  const leader = () => waitFor("a leader", () => agents.find((a) => a.instance.isLeader()));

  /** Controller writes (anything but the node halves' status reports and reads). */
  const controllerWrites = (calls: readonly ApiCall[]) =>
    calls.filter(
      (c) =>
        CONTROLLER_WRITES.has(c.verb) &&
        c.resource !== "leases" &&
        !(c.resource === "prepulls" && c.subresource === "status"),
    );

  before(async () => {
    [api, open, locked] = await Promise.all([
      startFakeApiServer({ bookmarkIntervalMs: 200 }),
      startRegistry(),
      startRegistry({ htpasswd: { user: USER, password: PASSWORD } }),
    ]);
    const creds = `${USER}:${PASSWORD}`;
    await Promise.all([
      pushImage(open.host, "shop/web", "v1", { layers: layer("web1") }),
      pushImage(open.host, "shop/web", "v2", { layers: layer("web2") }),
      pushImage(open.host, "shop/web", "v3", { layers: layer("web3") }),
      pushImage(open.host, "shop/logs", "v2", { layers: layer("logs2") }),
      pushImage(open.host, "shop/mid", "v1", { layers: layer("mid1") }),
      pushImage(locked.host, "shop/plain", "v2", { layers: layer("plain2") }, { creds }),
    ]);
    images = {
      web2: `${open.host}/shop/web:v2`,
      web3: `${open.host}/shop/web:v3`,
      plain2: `${locked.host}/shop/plain:v2`,
      logs2: `${open.host}/shop/logs:v2`,
      mid: `${open.host}/shop/mid:v1`,
    };
    const [a, b] = await Promise.all([startContainerd(), startContainerd()]);
    containerd.set("node-a", a);
    containerd.set("node-b", b);

    const ready = { conditions: [{ type: "Ready", status: "True" }] };
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: AGENT_NS } });
    // node-a is still starting (ferry's startup taint): pre-pulling onto it is wanted.
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-a", labels: { "kubernetes.io/hostname": "node-a", pool: "fast" } },
      spec: { taints: [{ key: STARTUP_TAINT, value: "pending", effect: "NoSchedule" }] },
      status: ready,
    });
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-b", labels: { "kubernetes.io/hostname": "node-b", pool: "slow" } },
      status: ready,
    });
    const dockerconfig = {
      auths: { [locked.host]: { auth: Buffer.from(creds).toString("base64") } },
    };
    api.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "regcred", namespace: NS },
      type: "kubernetes.io/dockerconfigjson",
      data: { ".dockerconfigjson": Buffer.from(JSON.stringify(dockerconfig)).toString("base64") },
    });
    // The pull secret comes from the ServiceAccount, as kubelet merges it.
    api.create({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace: NS },
      imagePullSecrets: [{ name: "regcred" }],
    });
    api.create(
      deployment("web", `${open.host}/shop/web:v1`, { gate: true, nodeSelector: { pool: "fast" } }),
    );
    api.create(
      deployment("plain", `${locked.host}/shop/plain:v1`, { nodeSelector: { pool: "fast" } }),
    );
    api.create({
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "logs", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "logs" } },
        template: {
          metadata: { labels: { app: "logs" } },
          spec: { containers: [{ name: "main", image: `${open.host}/shop/logs:v1` }] },
        },
      },
    });
    // Its controller is midway through a rollout (1 of 2 pods updated) when ferry starts.
    const midway = deployment("midway", images.mid, { nodeSelector: { pool: "fast" } });
    midway["status"] = { observedGeneration: 1, replicas: 2, updatedReplicas: 1 };
    api.create(midway);
    await startAgent("node-a", "agent-a");
    await startAgent("node-b", "agent-b");
  });

  after(async () => {
    await Promise.allSettled(agents.map((a) => a.instance.stop()));
    await Promise.allSettled([...containerd.values()].map((c) => c.stop()));
    await Promise.allSettled([api?.stop(), open?.stop(), locked?.stop()]);
  });

  test("one instance holds the Lease", async () => {
    const first = await leader();
    // Two renewals: the other candidate, which has seen the Lease, must still not lead.
    const renewals = () =>
      api.calls.filter(
        (c) => c.resource === "leases" && c.verb === "update" && c.user === first.user,
      ).length;
    const start = renewals();
    await waitFor("two renewals", () => renewals() >= start + 2);
    assert.deepEqual(
      agents.filter((a) => a.instance.isLeader()).map((a) => a.user),
      [first.user],
    );
    const lease = api.get("coordination.k8s.io/v1", "Lease", "ferry-workload-prepull", AGENT_NS);
    assert.equal(
      (lease?.["spec"] as { holderIdentity?: string } | undefined)?.holderIdentity,
      first.user,
    );
  });

  test("a rollout already under way when the leader starts is pre-pulled too", async () => {
    await waitFor("the midway image in node-a's containerd", () => inRuntime("node-a", images.mid));
    assert.equal(await inRuntime("node-b", images.mid), false);
  });

  test("a changed image reaches the eligible node with the workload's pull secret, the other node pulls nothing, and an unannotated Deployment is never written", async () => {
    const before = api.calls.length;
    api.modify("apps/v1", "Deployment", "plain", NS, (o) => setImage(o, images.plain2));
    await waitFor("the new image in node-a's containerd", () => inRuntime("node-a", images.plain2));
    const prepull = await waitFor("the PrePull reporting 1/1", () => {
      const pp = api.list("ferry.dev/v1alpha1", "PrePull", NS).find((p) => {
        const status = p["status"] as { ready?: string } | undefined;
        return (
          (p["spec"] as { images: string[] }).images.includes(images.plain2) &&
          status?.ready === "1/1"
        );
      });
      return pp;
    });
    assert.deepEqual((prepull["spec"] as { imagePullSecrets?: unknown }).imagePullSecrets, [
      { name: "regcred" },
    ]);
    const nodes = (prepull["status"] as { nodes: Record<string, { images: { state: string }[] }> })
      .nodes;
    assert.deepEqual(Object.keys(nodes), ["node-a"]);
    assert.equal(nodes["node-a"]?.images[0]?.state, "present");
    const grants = JSON.parse(
      (prepull["metadata"] as { annotations: Record<string, string> }).annotations[
        "ferry.dev/grants"
      ] ?? "{}",
    );
    assert.deepEqual(Object.keys(grants), ["node-a"]);
    assert.equal(await inRuntime("node-b", images.plain2), false);
    const writes = api.calls
      .slice(before)
      .filter(
        (c) =>
          c.resource === "deployments" &&
          c.name === "plain" &&
          c.verb !== "get" &&
          c.verb !== "list" &&
          c.verb !== "watch",
      );
    assert.deepEqual(writes, []);
    const plain = api.get("apps/v1", "Deployment", "plain", NS);
    assert.equal((plain?.["spec"] as { paused?: boolean } | undefined)?.paused, undefined);
    assert.equal(
      (plain?.["metadata"] as { annotations?: unknown } | undefined)?.annotations,
      undefined,
    );
  });

  test("a DaemonSet's new image reaches every node, never more than the budget (1) pulling at once", async () => {
    api.modify("apps/v1", "DaemonSet", "logs", NS, (o) => setImage(o, images.logs2));
    let most = 0;
    const granted = new Set<string>();
    await waitFor("both nodes reporting the image", () => {
      const pp = api
        .list("ferry.dev/v1alpha1", "PrePull", NS)
        .find((p) => (p["spec"] as { images: string[] }).images.includes(images.logs2));
      if (pp === undefined) return undefined;
      const annotations = (pp["metadata"] as { annotations?: Record<string, string> }).annotations;
      const grants = Object.keys(JSON.parse(annotations?.["ferry.dev/grants"] ?? "{}"));
      const nodes = (
        pp["status"] as { nodes?: Record<string, { present: number; total: number }> } | undefined
      )?.nodes;
      const done = (n: string) => nodes?.[n] !== undefined && nodes[n].present === nodes[n].total;
      for (const n of grants) granted.add(n);
      most = Math.max(most, grants.filter((n) => !done(n)).length);
      return done("node-a") && done("node-b");
    });
    assert.equal(most, 1);
    assert.deepEqual([...granted].sort(), ["node-a", "node-b"]);
    assert.equal(await inRuntime("node-a", images.logs2), true);
    assert.equal(await inRuntime("node-b", images.logs2), true);
  });

  const gatedRollout = async (image: string) => {
    const seen: boolean[] = [];
    api.modify("apps/v1", "Deployment", "web", NS, (o) => setImage(o, image));
    // The fake rollout: it may proceed only while the Deployment is not paused. Watch for the
    // hold, then for the release, and check the runtime at the moment the rollout may proceed.
    await waitFor("the hold", () => {
      const d = api.get("apps/v1", "Deployment", "web", NS);
      const paused = (d?.["spec"] as { paused?: boolean } | undefined)?.paused === true;
      seen.push(paused);
      return paused;
    });
    await waitFor("the release", () => {
      const d = api.get("apps/v1", "Deployment", "web", NS);
      return (d?.["spec"] as { paused?: boolean } | undefined)?.paused === false;
    });
    assert.equal(
      await inRuntime("node-a", image),
      true,
      "the image is in containerd when the rollout may proceed",
    );
    assert.equal(await inRuntime("node-b", image), false);
    const d = api.get("apps/v1", "Deployment", "web", NS);
    const annotations = (d?.["metadata"] as { annotations: Record<string, string> } | undefined)
      ?.annotations;
    assert.deepEqual(Object.keys(annotations ?? {}), ["ferry.dev/prepull"]);
  };

  /** Event reasons on a Deployment, once there are `count` (Events follow the write they report). */
  const reasonsFor = (name: string, count: number) =>
    waitFor(`${count} Events on ${name}`, () => {
      const reasons = eventReasons(name);
      return reasons.length >= count ? reasons : undefined;
    });
  const eventReasons = (name: string) =>
    api
      .list("v1", "Event", NS)
      .filter((e) => (e["involvedObject"] as { name?: string; kind?: string }).name === name)
      .map((e) => e["reason"]);

  test("a gated Deployment is paused until the new image is present, then resumed, with Events", async () => {
    const leading = await leader();
    const before = api.calls.length;
    // Another writer changes the Deployment between ferry's read and its hold: the stale
    // patch must fail (409), be re-decided on a fresh read, and keep the other writer's change.
    let raced = false;
    api.beforeRequest = (call) => {
      if (raced || call.verb !== "patch" || call.resource !== "deployments" || call.name !== "web")
        return;
      raced = true;
      api.modify("apps/v1", "Deployment", "web", NS, (o) => {
        const meta = o["metadata"] as { labels?: Record<string, string> };
        meta.labels = { ...meta.labels, team: "checkout" };
      });
    };
    try {
      await gatedRollout(images.web2);
    } finally {
      api.beforeRequest = undefined;
    }
    assert.deepEqual(await reasonsFor("web", 2), [GateReason.Hold, GateReason.Release]);
    const calls = api.calls.slice(before);
    const patches = calls.filter(
      (c) => c.resource === "deployments" && c.name === "web" && c.verb === "patch",
    );
    assert.deepEqual(
      patches.map((c) => c.status),
      [409, 200, 200],
      "hold refused on conflict, hold retried, release",
    );
    assert.ok(
      calls.some((c) => c.resource === "deployments" && c.name === "web" && c.verb === "get"),
    );
    const web = api.get("apps/v1", "Deployment", "web", NS);
    assert.deepEqual((web?.["metadata"] as { labels?: unknown } | undefined)?.labels, {
      team: "checkout",
    });
    const writes = controllerWrites(calls);
    assert.deepEqual(
      [...new Set(writes.map((c) => c.user))],
      [leading.user],
      "only the leader acts",
    );
  });

  test("a gated Deployment its owner paused is left alone: no write, a Skipped Event", async () => {
    const before = api.calls.length;
    // Created after the controller's baseline, so its images are a rollout like a change.
    const d = deployment("paused", images.web2, { gate: true, nodeSelector: { pool: "fast" } });
    (d["spec"] as { paused?: boolean }).paused = true;
    api.create(d);
    await waitFor("the rollout's gate record", () =>
      api.list("ferry.dev/v1alpha1", "PrePull", NS).find((p) => {
        const annotations = (p["metadata"] as { annotations?: Record<string, string> }).annotations;
        return (
          annotations?.["ferry.dev/workload"] === "Deployment/paused" &&
          annotations["ferry.dev/gate"] === "skipped"
        );
      }),
    );
    const reasons = await reasonsFor("paused", 1);
    assert.deepEqual([...new Set(reasons)], [GateReason.Skipped]);
    const writes = api.calls
      .slice(before)
      .filter(
        (c) => c.resource === "deployments" && c.name === "paused" && CONTROLLER_WRITES.has(c.verb),
      );
    assert.deepEqual(writes, []);
    const after = api.get("apps/v1", "Deployment", "paused", NS);
    assert.equal((after?.["spec"] as { paused?: boolean } | undefined)?.paused, true);
    assert.equal(
      (after?.["metadata"] as { annotations?: Record<string, string> } | undefined)?.annotations?.[
        "ferry.dev/held-for"
      ],
      undefined,
    );
  });

  test("when the leader stops, the other instance takes over and acts alone", async () => {
    const old = await leader();
    await old.instance.stop();
    agents.splice(agents.indexOf(old), 1);
    const next = await leader();
    assert.notEqual(next.user, old.user);
    // The stopped node's agent comes back (a new pod) and campaigns again, without winning.
    const restarted = await startAgent(old.node, `${old.user}-2`);
    const before = api.calls.length;
    await gatedRollout(images.web3);
    assert.equal(restarted.instance.isLeader(), false);
    const writes = controllerWrites(api.calls.slice(before));
    assert.deepEqual([...new Set(writes.map((c) => c.user))], [next.user]);
    assert.deepEqual(await reasonsFor("web", 4), [
      GateReason.Hold,
      GateReason.Release,
      GateReason.Hold,
      GateReason.Release,
    ]);
    // The rollout PrePull of the superseded template is gone; one remains for web.
    await waitFor("the superseded PrePull deleted", () => {
      const left = api
        .list("ferry.dev/v1alpha1", "PrePull", NS)
        .filter(
          (p) =>
            (p["metadata"] as { annotations: Record<string, string> }).annotations[
              "ferry.dev/workload"
            ] === "Deployment/web",
        );
      return left.length === 1 ? left : undefined;
    });
  });
});
