// The fake Kubernetes API server against two real clients: @kubernetes/client-node (what ferry
// uses) and Debian's kubectl. Each answer checked here is what kube-apiserver gives.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import {
  type FakeApiServer,
  type KubeObject,
  startFakeApiServer,
} from "../fixtures/kube-apiserver.ts";
import { until } from "../fixtures/until.ts";

const execFileAsync = promisify(execFile);

type Obj = Record<string, unknown> & {
  metadata?: Record<string, unknown>;
  spec?: Record<string, unknown>;
};

function statusCode(error: unknown): number | undefined {
  return error instanceof k8s.ApiException ? error.code : undefined;
}

describe("fake Kubernetes API server", () => {
  let api: FakeApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let dir: string;

  const kubectl = async (...args: string[]) => {
    const { stdout } = await execFileAsync("kubectl", [
      "--kubeconfig",
      api.kubeconfigPath,
      ...args,
    ]);
    return stdout;
  };
  const kubectlFails = async (...args: string[]) => {
    try {
      await kubectl(...args);
    } catch (error) {
      return String((error as { stderr?: string }).stderr ?? error);
    }
    assert.fail(`kubectl ${args.join(" ")} succeeded`);
  };

  before(async () => {
    api = await startFakeApiServer({ bookmarkIntervalMs: 100 });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(api.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    dir = join(api.kubeconfigPath, "..");
  });
  after(async () => {
    await api.stop();
  });

  test("a node created by client-node is listed by kubectl; kubectl taint adds and removes taints", async () => {
    await core.createNode({
      body: {
        metadata: { name: "node-a", labels: { pool: "gpu" } },
        spec: { taints: [{ key: "startup", value: "pending", effect: "NoSchedule" }] },
      },
    });
    const listed = JSON.parse(await kubectl("get", "nodes", "-o", "json")) as { items: Obj[] };
    assert.deepEqual(
      listed.items.map((n) => n.metadata?.["name"]),
      ["node-a"],
    );
    await kubectl("taint", "nodes", "node-a", "other=x:NoExecute");
    let node = await core.readNode({ name: "node-a" });
    assert.deepEqual(node.spec?.taints?.map((t) => t.key).sort(), ["other", "startup"]);
    await kubectl("taint", "nodes", "node-a", "startup-");
    node = await core.readNode({ name: "node-a" });
    assert.deepEqual(
      node.spec?.taints?.map((t) => `${t.key}=${t.value}:${t.effect}`),
      ["other=x:NoExecute"],
    );
    assert.ok(
      api.calls.some(
        (c) =>
          c.verb === "patch" &&
          c.resource === "nodes" &&
          c.patchType === "application/strategic-merge-patch+json",
      ),
      "kubectl taint sent a strategic merge patch",
    );
  });

  test("JSON patch with a stale test is refused (422) and changes nothing; a current one applies", async () => {
    const node = await core.readNode({ name: "node-a" });
    const before = node.metadata?.resourceVersion;
    const stale = [
      {
        op: "test",
        path: "/spec/taints",
        value: [{ key: "startup", value: "pending", effect: "NoSchedule" }],
      },
      { op: "remove", path: "/spec/taints" },
    ];
    const options = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
    await assert.rejects(
      core.patchNode({ name: "node-a", body: stale }, options),
      (e) => statusCode(e) === 422,
    );
    assert.equal((await core.readNode({ name: "node-a" })).metadata?.resourceVersion, before);
    const current = [
      { op: "test", path: "/spec/taints", value: node.spec?.taints ?? null },
      { op: "replace", path: "/spec/taints", value: [] },
    ];
    const patched = await core.patchNode({ name: "node-a", body: current }, options);
    assert.deepEqual(patched.spec?.taints, []);
    assert.notEqual(patched.metadata?.resourceVersion, before);
  });

  test("an update with a stale resourceVersion is a 409 Conflict Status", async () => {
    const node = await core.readNode({ name: "node-a" });
    await kubectl("label", "nodes", "node-a", "zone=b");
    node.metadata = { ...node.metadata, labels: { ...node.metadata?.labels, mine: "1" } };
    await assert.rejects(core.replaceNode({ name: "node-a", body: node }), (e) => {
      assert.equal(statusCode(e), 409);
      const body = JSON.parse(String((e as k8s.ApiException<string>).body)) as Obj;
      assert.equal(body["kind"], "Status");
      assert.equal(body["reason"], "Conflict");
      return true;
    });
    const stderr = await kubectlFails("get", "nodes", "nope");
    assert.match(stderr, /NotFound.*nodes "nope" not found/);
  });

  test("PrePull: kubectl create -f / apply / patch, status subresource from client-node", async () => {
    const file = join(dir, "prepull.yaml");
    const manifest = (image: string) =>
      [
        "apiVersion: ferry.dev/v1alpha1",
        "kind: PrePull",
        "metadata: {name: web, namespace: apps}",
        `spec: {images: ["${image}"], required: true, nodeSelector: {pool: gpu}}`,
        "",
      ].join("\n");
    await writeFile(file, manifest("registry.example/web:1"));
    await kubectl("create", "-f", file);
    await writeFile(file, manifest("registry.example/web:2"));
    await kubectl("apply", "-f", file);
    const got = (await custom.getNamespacedCustomObject({
      group: "ferry.dev",
      version: "v1alpha1",
      namespace: "apps",
      plural: "prepulls",
      name: "web",
    })) as Obj;
    assert.deepEqual(got.spec?.["images"], ["registry.example/web:2"]);
    const generation = got.metadata?.["generation"];
    assert.equal(generation, 2);

    // a status write changes only status; spec in it is ignored
    const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: "ferry.dev",
        version: "v1alpha1",
        namespace: "apps",
        plural: "prepulls",
        name: "web",
        body: {
          spec: { images: ["evil"] },
          status: { nodes: { "node-a": { present: 1, total: 1 } } },
        },
      },
      merge,
    );
    // a main-resource write does not change status
    await kubectl(
      "patch",
      "prepulls",
      "web",
      "-n",
      "apps",
      "--type",
      "merge",
      "-p",
      '{"spec":{"required":false},"status":{"ready":"9/9"}}',
    );
    const shown = JSON.parse(await kubectl("get", "prepulls", "-n", "apps", "-o", "json")) as {
      items: Obj[];
    };
    const item = shown.items[0];
    assert.deepEqual(item?.spec, {
      images: ["registry.example/web:2"],
      required: false,
      nodeSelector: { pool: "gpu" },
    });
    assert.deepEqual(item?.["status"], { nodes: { "node-a": { present: 1, total: 1 } } });
    assert.equal(item?.metadata?.["generation"], 3);

    // custom resources take no strategic merge patch (415), as on a real server
    const stderr = await kubectlFails(
      "patch",
      "pp",
      "web",
      "-n",
      "apps",
      "-p",
      '{"spec":{"required":true}}',
    );
    assert.match(stderr, /unknown format|not supported/);
    assert.ok(
      api.calls.some(
        (c) => c.resource === "prepulls" && c.subresource === "status" && c.verb === "patch",
      ),
    );
  });

  test("list + watch: selectors, resourceVersion, BOOKMARK, 410 Gone after compaction", async () => {
    api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "list-a",
        namespace: "ferry-system",
        labels: { "ferry.dev/image-list": "true" },
      },
      data: { "images.yaml": "a" },
    });
    api.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "other", namespace: "ferry-system" },
      data: {},
    });
    const list = await core.listNamespacedConfigMap({
      namespace: "ferry-system",
      labelSelector: "ferry.dev/image-list=true",
    });
    assert.deepEqual(
      list.items.map((c) => c.metadata?.name),
      ["list-a"],
    );
    const byName = await core.listNamespacedConfigMap({
      namespace: "ferry-system",
      fieldSelector: "metadata.name=other",
    });
    assert.deepEqual(
      byName.items.map((c) => c.metadata?.name),
      ["other"],
    );
    const rv = list.metadata?.resourceVersion ?? "";

    const seen: string[] = [];
    let bookmarks = 0;
    const watch = new k8s.Watch(kc);
    let ended: (e: unknown) => void = () => {};
    const done = new Promise<unknown>((resolve) => {
      ended = resolve;
    });
    const controller = await watch.watch(
      "/api/v1/namespaces/ferry-system/configmaps",
      {
        labelSelector: "ferry.dev/image-list=true",
        resourceVersion: rv,
        allowWatchBookmarks: true,
      },
      (phase, obj: KubeObject) => {
        if (phase === "BOOKMARK") bookmarks++;
        else seen.push(`${phase} ${String(obj.metadata?.["name"])}`);
      },
      (e) => ended(e),
    );
    // changes after rv arrive; one leaving the selector is a DELETED
    // `kubectl create -f` sends JSON; typed generators (`kubectl create configmap`) send protobuf,
    // which the fake server refuses with 415
    const cm = join(dir, "cm.yaml");
    await writeFile(
      cm,
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: list-b, namespace: ferry-system}\ndata: {}\n",
    );
    await kubectl("create", "-f", cm);
    await kubectl(
      "label",
      "configmap",
      "list-b",
      "-n",
      "ferry-system",
      "ferry.dev/image-list=true",
    );
    await kubectl("label", "configmap", "list-a", "-n", "ferry-system", "ferry.dev/image-list-");
    await until("two changes and a BOOKMARK", () => seen.length >= 2 && bookmarks > 0, 10_000, {
      context: () => `seen ${JSON.stringify(seen)}, ${bookmarks} bookmarks`,
    });
    assert.deepEqual(seen, ["ADDED list-b", "DELETED list-a"]);
    assert.ok(bookmarks > 0, "BOOKMARK events arrive when allowed");
    controller.abort();
    await done;

    // a watch from a compacted resourceVersion: ERROR event with a 410 Status
    api.compact();
    const errors: KubeObject[] = [];
    await new Promise<void>((resolve) => {
      void watch.watch(
        "/api/v1/namespaces/ferry-system/configmaps",
        { resourceVersion: rv },
        (phase, obj: KubeObject) => {
          if (phase === "ERROR") errors.push(obj);
        },
        () => resolve(),
      );
    });
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.["code"], 410);
    assert.equal(errors[0]?.["reason"], "Expired");
    // a fresh list's resourceVersion is watchable again
    const fresh = await core.listNamespacedConfigMap({ namespace: "ferry-system" });
    const again: string[] = [];
    const c2 = await watch.watch(
      "/api/v1/namespaces/ferry-system/configmaps",
      { resourceVersion: fresh.metadata?.resourceVersion ?? "" },
      (phase, obj: KubeObject) => again.push(`${phase} ${String(obj.metadata?.["name"])}`),
      () => {},
    );
    await kubectl("delete", "configmap", "other", "-n", "ferry-system");
    await until("the DELETED event on the fresh watch", () => again.length > 0, 15_000);
    c2.abort();
    assert.deepEqual(again, ["DELETED other"]);
  });

  test("calls are recorded in RBAC terms, per user", async () => {
    const other = await api.kubeconfigFor("system:serviceaccount:ferry-system:ferry");
    const kc2 = new k8s.KubeConfig();
    kc2.loadFromFile(other.path);
    await kc2
      .makeApiClient(k8s.CoreV1Api)
      .readNamespacedSecret({ name: "pull", namespace: "apps" })
      .catch(() => {});
    const mine = api.calls.filter((c) => c.user === "system:serviceaccount:ferry-system:ferry");
    assert.deepEqual(mine, [
      {
        verb: "get",
        group: "",
        resource: "secrets",
        subresource: undefined,
        namespace: "apps",
        name: "pull",
        user: "system:serviceaccount:ferry-system:ferry",
        status: 404,
      },
    ]);
    assert.ok(
      api.calls.some(
        (c) => c.verb === "watch" && c.resource === "configmaps" && c.user === "admin",
      ),
    );
    assert.ok(
      api.calls.some(
        (c) => c.verb === "list" && c.resource === "prepulls" && c.group === "ferry.dev",
      ),
    );
  });

  test("custom resources take only metadata.name and metadata.namespace as field selectors, as the real server", async () => {
    api.create({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "NodeImages",
      metadata: { name: "node-fs" },
      spec: { images: [] },
    });
    const byName = (await custom.listClusterCustomObject({
      group: "ferry.dev",
      version: "v1alpha1",
      plural: "nodeimages",
      fieldSelector: "metadata.name=node-fs",
    })) as { items: Obj[] };
    assert.deepEqual(
      byName.items.map((o) => o.metadata?.["name"]),
      ["node-fs"],
    );
    await assert.rejects(
      custom.listClusterCustomObject({
        group: "ferry.dev",
        version: "v1alpha1",
        plural: "nodeimages",
        fieldSelector: "spec.node=node-fs",
      }),
      (error: unknown) => statusCode(error) === 400,
    );
    const out = await kubectlFails("get", "nodeimages", "--field-selector", "status.present=1");
    assert.match(out, /field label not supported: status\.present/);
  });

  test("traffic counts, per user, list and watch bytes, writes and resourceVersion conflicts", async () => {
    const user = "system:serviceaccount:ferry-system:counted";
    const counted = new k8s.KubeConfig();
    counted.loadFromFile((await api.kubeconfigFor(user)).path);
    const c = counted.makeApiClient(k8s.CustomObjectsApi);
    const where = { group: "ferry.dev", version: "v1alpha1", plural: "nodeimages" };
    assert.deepEqual(api.traffic(user), { listBytes: 0, watchBytes: 0, writes: 0, conflicts: 0 });
    const created = (await c.createClusterCustomObject({
      ...where,
      body: { apiVersion: "ferry.dev/v1alpha1", kind: "NodeImages", metadata: { name: "counted" } },
    })) as Obj;
    const stale = String(created.metadata?.["resourceVersion"]);
    const patch = (rv: string) =>
      c.patchClusterCustomObjectStatus(
        {
          ...where,
          name: "counted",
          body: { metadata: { resourceVersion: rv }, status: { present: 1 } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    await patch(stale);
    await assert.rejects(patch(stale), (error: unknown) => statusCode(error) === 409);
    const list = await c.listClusterCustomObject(where);
    const listBytes = Buffer.byteLength(JSON.stringify(list));
    const t = api.traffic(user);
    assert.equal(t.writes, 2, "the create and the first patch");
    assert.equal(t.conflicts, 1, "the second patch, from a stale resourceVersion");
    assert.equal(t.listBytes, listBytes);
    assert.equal(t.watchBytes, 0);
    const events: string[] = [];
    const controller = await new k8s.Watch(counted).watch(
      "/apis/ferry.dev/v1alpha1/nodeimages",
      { fieldSelector: "metadata.name=counted" },
      (type) => events.push(type),
      () => {},
    );
    await until("the watch's first event", () => events.length > 0);
    controller.abort();
    assert.ok(api.traffic(user).watchBytes > 0);
    assert.ok(api.traffic().writes >= t.writes, "the total includes every user");
  });
});
