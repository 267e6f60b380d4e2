// The fleet view of `ferry agent --kubernetes`: images × nodes in /status and on the status
// page, built from the PrePulls' per-node statuses. One agent runs for node-a (real containerd
// and registry, the fake API server); the test writes node-b's entries as that node's agent
// would. /status must carry both columns with the states and reasons each node reported
// (node-a's live, and equal to what it wrote), an image only node-b's PrePull lists, the node
// name and its Kubernetes conditions; headless Chromium must draw one column per node.
import assert from "node:assert/strict";
import { request } from "node:http";
import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { type Browser, chromium } from "playwright-core";
import { buildWeb } from "../../scripts/build-web.ts";
import { pushImage } from "../fixtures/images.ts";
import {
  type FakeApiServer,
  type KubeObject,
  startFakeApiServer,
} from "../fixtures/kube-apiserver.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import {
  describeRun,
  ferry,
  type FerryProcess,
  removeDir,
  startFerry,
  tempDir,
  until as untilWithin,
} from "./cli.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST = join(ROOT, "dist/web");
const APP = join(ROOT, "src/web/app");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const TAINT = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
const B_REASON = "FERRY_REGISTRY_NOT_FOUND: manifest unknown on node-b";

interface Cell {
  state: string;
  reason?: string;
  digest?: string;
  lastError?: { code: string; message: string };
}
interface Row {
  image: string;
  nodes?: Record<string, Cell>;
  targets?: Record<string, unknown>;
  prepulls?: string[];
}
interface Status {
  node?: string;
  nodes?: string[];
  images?: Row[];
  kubernetes?: {
    node?: string;
    startupTaint?: { key: string; present?: boolean; heldBy?: string[] } | null;
    conditions?: { type: string; status: string }[];
  };
}
interface NodeEntry {
  images: { image: string; state: string; reason?: string; digest?: string }[];
}

/** dist/web is missing or older than a source of the page: build it. */
async function ensureBuilt(): Promise<void> {
  const built = await stat(join(DIST, "index.html")).catch(() => undefined);
  if (built !== undefined) {
    const sources = await readdir(APP);
    const times = await Promise.all(sources.map(async (f) => (await stat(join(APP, f))).mtimeMs));
    if (times.every((t) => t <= built.mtimeMs)) return;
  }
  await buildWeb(DIST, false);
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString()));
    })
      .on("error", reject)
      .end();
  });
}

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) =>
  untilWithin(what, probe, 60_000);

describe("ferry agent --kubernetes: the fleet in /status and on the page", () => {
  let work: string;
  let api: FakeApiServer;
  let registry: RunningRegistry;
  let containerd: RunningContainerd;
  let browser: Browser | undefined;
  let agent: FerryProcess | undefined;
  let url: string;
  let good: string;
  let bad: string;
  let onlyB: string;
  let stderr = "";

  before(async () => {
    await ensureBuilt();
    work = await tempDir("kube-fleet");
    [api, registry, containerd] = await Promise.all([
      startFakeApiServer(),
      startRegistry(),
      startContainerd(),
    ]);
    good = `${registry.host}/fleet/good:1`;
    bad = `${registry.host}/fleet/absent:1`; // never pushed: node-a's pull fails
    onlyB = `${registry.host}/fleet/only-b:1`;
    await pushImage(registry.host, "fleet/good", "1", {
      layers: [[{ path: "good/data.bin", size: 4096, seed: "good" }]],
    });
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-a", labels: { pool: "a" } },
      spec: { taints: [{ key: TAINT, value: "pending", effect: "NoSchedule" }] },
    });
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-b", labels: { pool: "b" } },
    });
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "PrePull",
      metadata: { name: "fleet", namespace: "apps" },
      spec: { images: [good, bad] },
    });
    // An image list that cannot be read: condition ImageListsReadable=False, the taint held.
    api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "broken-list",
        namespace: "ferry-system",
        labels: { "ferry.dev/image-list": "true" },
      },
      data: { "images.yaml": "images: [unclosed\n" },
    });
    // Selects node-b only: node-a's agent keeps nothing of it, yet shows it in the fleet.
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "PrePull",
      metadata: { name: "pool-b", namespace: "apps" },
      spec: { images: [onlyB], nodeSelector: { pool: "b" } },
    });
    const kubeconfig = (await api.kubeconfigFor("system:serviceaccount:ferry-system:ferry")).path;
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // The fleet from PrePull statuses (node-b's entry is written there below): the previous
    // version's report, which agent.yaml still selects during an upgrade.
    const config = join(work, "agent.yaml");
    await writeFile(config, "kubernetes:\n  report: prepull\n");
    agent = startFerry(
      [
        "agent",
        "-c",
        config,
        "--kubernetes",
        "--prepull-budget",
        "7",
        "--gate-timeout",
        "90s",
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
        NODE_NAME: "node-a",
        POD_NAMESPACE: "ferry-system",
        KUBECONFIG: kubeconfig,
        TMPDIR: work,
        HOME: work,
      },
    );
    agent.child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
  });

  test("the workload pre-pull settings reach Kubernetes mode; bad ones stop the agent (exit 2)", async () => {
    const line = await until("the kubernetes mode log line", async () => {
      if (agent?.child.exitCode !== null) assert.fail(describeRun(await agent!.result));
      return stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e["msg"] === "kubernetes mode");
    });
    assert.deepEqual(line["workloadPrePull"], { budget: 7, gateTimeoutMs: 90_000 });
    const env = { NODE_NAME: "node-x", KUBECONFIG: "/nonexistent", HOME: work, TMPDIR: work };
    for (const [flags, message] of [
      [["--prepull-budget", "0"], /--prepull-budget must be a whole number of nodes from 1/],
      [["--prepull-budget", "many"], /--prepull-budget must be a whole number of nodes/],
      [["--gate-timeout", "10"], /--gate-timeout "10" is not a duration/],
      [["--gate-timeout", "0s"], /--gate-timeout must be at least 1s/],
    ] as const) {
      const run = await ferry(["agent", "--kubernetes", ...flags], env);
      assert.equal(run.code, 2, describeRun(run));
      assert.match(run.stderr, message);
      assert.match(run.stderr, /hint: /);
    }
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (agent !== undefined && agent.child.exitCode === null) {
      agent.child.kill("SIGTERM");
      await agent.result;
    }
    await Promise.all([api?.stop(), registry?.stop()]);
    await containerd?.stop();
    await removeDir(work);
  });

  /** Writes node-b's entry into a PrePull's status, as node-b's agent would. */
  const writeNodeB = (name: string, images: NodeEntry["images"]) =>
    api.modify("ferry.dev/v1alpha1", "PrePull", name, "apps", (o: KubeObject) => {
      const status = (o["status"] ?? {}) as { nodes?: Record<string, unknown> };
      o["status"] = {
        ...status,
        nodes: {
          ...(status.nodes ?? {}),
          "node-b": {
            images,
            present: images.filter((i) => i.state === "present").length,
            total: images.length,
            updated: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        },
      } as KubeObject["status"];
    });

  const nodeEntry = (name: string, node: string) =>
    (
      api.get("ferry.dev/v1alpha1", "PrePull", name, "apps")?.["status"] as
        | { nodes?: Record<string, NodeEntry> }
        | undefined
    )?.nodes?.[node];

  test("/status has images × nodes from the PrePull statuses, the node and its conditions", async () => {
    // node-a's agent settles: good present, bad failed, both written to the PrePull.
    const written = await until("node-a's entry in the PrePull status", async () => {
      if (agent?.child.exitCode !== null) assert.fail(describeRun(await agent!.result));
      const entry = nodeEntry("fleet", "node-a");
      const states = entry?.images.map((i) => i.state);
      return states?.[0] === "present" && states[1] === "failed" ? entry : undefined;
    });
    writeNodeB("fleet", [
      { image: good, state: "present", digest: written?.images[0]?.digest ?? "" },
      { image: bad, state: "failed", reason: B_REASON },
    ]);
    writeNodeB("pool-b", [{ image: onlyB, state: "pulling" }]);

    const status = await until("node-b in /status", async () => {
      const s = JSON.parse(await get(`${url}/status`)) as Status;
      const row = s.images?.find((r) => r.image === onlyB);
      return row?.nodes?.["node-b"] === undefined ? undefined : s;
    });
    assert.equal(status.node, "node-a");
    assert.deepEqual(status.nodes, ["node-a", "node-b"]);
    const row = (image: string) => {
      const r = status.images?.find((i) => i.image === image);
      assert.ok(r, `a row for ${image}: ${JSON.stringify(status.images)}`);
      return r;
    };

    const g = row(good).nodes ?? {};
    assert.equal(g["node-a"]?.state, "present");
    assert.equal(g["node-b"]?.state, "present");
    assert.equal(g["node-a"]?.digest, written?.images[0]?.digest);
    assert.ok(row(good).targets?.["containerd"], "node-a's own row keeps its targets");

    const b = row(bad).nodes ?? {};
    const aReason = written?.images[1]?.reason ?? "";
    assert.notEqual(aReason, "", "node-a wrote a reason for its failure");
    assert.equal(b["node-a"]?.state, "failed");
    assert.equal(b["node-a"]?.reason, aReason, "node-a's live cell says what it wrote");
    assert.equal(b["node-b"]?.state, "failed");
    assert.equal(b["node-b"]?.reason, B_REASON);
    assert.deepEqual(b["node-b"]?.lastError, {
      code: "FERRY_REGISTRY_NOT_FOUND",
      message: "manifest unknown on node-b",
    });

    const o = row(onlyB);
    assert.deepEqual(Object.keys(o.nodes ?? {}), ["node-b"], "node-a does not keep pool-b's image");
    assert.equal(o.nodes?.["node-b"]?.state, "pulling");
    assert.deepEqual(o.prepulls, ["apps/pool-b"]);

    const kube = status.kubernetes;
    assert.equal(kube?.node, "node-a");
    assert.equal(kube?.startupTaint?.key, TAINT);
    assert.equal(kube?.startupTaint?.present, true, "held while a list cannot be read");
    assert.equal(kube?.startupTaint?.heldBy?.length, 1);
    assert.match(kube?.startupTaint?.heldBy?.[0] ?? "", /^configmap\/ferry-system\/broken-list: /);
    const readable = kube?.conditions?.find((c) => c.type === "ImageListsReadable");
    assert.equal(readable?.status, "False", JSON.stringify(kube?.conditions));
    // The list is taken away: the condition goes, and so does the taint.
    api.delete("v1", "ConfigMap", "broken-list", "ferry-system");
    const released = await until("the taint removed in /status", async () => {
      const s = JSON.parse(await get(`${url}/status`)) as Status;
      return s.kubernetes?.startupTaint?.present === false ? s.kubernetes : undefined;
    });
    assert.equal(
      released.conditions?.some((c) => c.type === "ImageListsReadable"),
      false,
      JSON.stringify(released.conditions),
    );

    // node-b changes its mind: /status follows the PrePull's status.
    writeNodeB("fleet", [
      { image: good, state: "present" },
      { image: bad, state: "missing" },
    ]);
    await until("node-b's new state in /status", async () => {
      const s = JSON.parse(await get(`${url}/status`)) as Status;
      const cell = s.images?.find((r) => r.image === bad)?.nodes?.["node-b"];
      return cell?.state === "missing" && cell.reason === undefined ? true : undefined;
    });
  });

  test("the page draws one column per node with each node's state", async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox"],
      headless: true,
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const blocked: string[] = [];
    await context.route("**/*", (route) => {
      if (route.request().url().startsWith(`${url}/`)) return route.continue();
      blocked.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${url}/`);
    await page.waitForSelector("#connection[data-state='live']");
    await page.waitForSelector(`tr[data-image="${onlyB}"] td[data-column="node-b"]`);
    const headers = await page.locator("#grid thead th[scope=col]").allTextContents();
    assert.deepEqual(headers, ["Image", "node-a", "node-b"]);
    const state = (image: string, node: string) =>
      page
        .locator(`tr[data-image="${image}"] td[data-column="${node}"]`)
        .getAttribute("data-state");
    assert.equal(await state(good, "node-a"), "present");
    assert.equal(await state(good, "node-b"), "present");
    assert.equal(await state(bad, "node-a"), "failed");
    assert.equal(await state(bad, "node-b"), "missing");
    assert.equal(await state(onlyB, "node-a"), "unknown");
    assert.equal(await state(onlyB, "node-b"), "pulling");
    // a failed cell carries its reason
    const title = await page
      .locator(`tr[data-image="${bad}"] td[data-column="node-a"]`)
      .getAttribute("title");
    assert.match(title ?? "", /\S+: \S/);
    assert.deepEqual(errors, []);
    assert.deepEqual(blocked, []);
    await context.close();
  });
});
