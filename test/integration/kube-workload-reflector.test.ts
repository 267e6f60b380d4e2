// The informer's list+watch as the workload controller uses it, against the fake API server:
// changes made while the watch was away, behind a 410 Gone, come back through a relist as the
// differences they are; a first list that fails is retried until stopped (retryFirstList).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AppsV1Api, KubeConfig, type V1Deployment } from "@kubernetes/client-node";
import { CollectionWatch } from "../../src/kube/watcher.ts";
import {
  type FakeApiServer,
  type KubeObject,
  startFakeApiServer,
} from "../fixtures/kube-apiserver.ts";
import { until } from "../fixtures/until.ts";

const WAIT_MS = 30_000;

function deployment(name: string, image: string): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "default" },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "c", image }] },
      },
    },
  } as KubeObject;
}

function imageOf(d: V1Deployment | undefined): string | undefined {
  return d?.spec?.template.spec?.containers[0]?.image;
}

describe("workload reflector", { timeout: 60_000 }, () => {
  let api: FakeApiServer;
  let reflector: CollectionWatch<V1Deployment>;
  const changes: { type: string; name: string; image?: string; before?: string }[] = [];

  const waitForChanges = (count: number) =>
    until(`${count} changes`, () => changes.length >= count, WAIT_MS, {
      context: () => JSON.stringify(changes),
    });

  before(async () => {
    // No bookmark during the test, so a reconnecting watch resumes from an old resourceVersion.
    api = await startFakeApiServer({ bookmarkIntervalMs: 600_000 });
    api.create(deployment("one", "reg/one:1"));
    api.create(deployment("two", "reg/two:1"));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(api.kubeconfigPath);
    const apps = kubeConfig.makeApiClient(AppsV1Api);
    reflector = new CollectionWatch<V1Deployment>({
      config: kubeConfig,
      path: "/apis/apps/v1/deployments",
      list: () => apps.listDeploymentForAllNamespaces({}),
      watchTimeoutSeconds: 1,
      retryFirstList: true,
      onError: () => {},
      onChange: () => {},
      onDelta: (type, object, previous) => {
        const image = imageOf(object);
        const before = imageOf(previous);
        changes.push({
          type,
          name: object.metadata?.name ?? "",
          ...(image === undefined ? {} : { image }),
          ...(before === undefined ? {} : { before }),
        });
      },
    });
  });

  after(async () => {
    reflector?.stop();
    await api?.stop();
  });

  test("lists, then watches", async () => {
    await reflector.start();
    assert.deepEqual(changes.map((c) => `${c.type} ${c.name}`).sort(), ["ADDED one", "ADDED two"]);
    api.modify("apps/v1", "Deployment", "one", "default", (o) => {
      (o["spec"] as { replicas?: number }).replicas = 3;
    });
    await waitForChanges(3);
    assert.deepEqual(changes[2], {
      type: "MODIFIED",
      name: "one",
      image: "reg/one:1",
      before: "reg/one:1",
    });
  });

  test("after 410 Gone it relists and reports what changed while it was away, then watches again", async () => {
    const lists = api.calls.filter((c) => c.verb === "list" && c.resource === "deployments").length;
    changes.length = 0;
    let armed = true;
    // When the watch (timed out by the server) comes back, change things and compact the
    // history first: its resourceVersion is then too old and the server answers 410.
    api.beforeRequest = (call) => {
      if (!armed || call.verb !== "watch" || call.resource !== "deployments") return;
      armed = false;
      api.modify("apps/v1", "Deployment", "one", "default", (o) => {
        const spec = o["spec"] as { template: { spec: { containers: { image: string }[] } } };
        const c = spec.template.spec.containers[0];
        if (c) c.image = "reg/one:2";
      });
      api.delete("apps/v1", "Deployment", "two", "default");
      api.create(deployment("three", "reg/three:1"));
      api.compact();
    };
    await waitForChanges(3);
    api.beforeRequest = undefined;
    assert.deepEqual(
      [...changes].sort((a, b) => a.name.localeCompare(b.name)),
      [
        { type: "MODIFIED", name: "one", image: "reg/one:2", before: "reg/one:1" },
        { type: "ADDED", name: "three", image: "reg/three:1" },
        { type: "DELETED", name: "two", image: "reg/two:1", before: "reg/two:1" },
      ],
    );
    const relists = api.calls.filter(
      (c) => c.verb === "list" && c.resource === "deployments",
    ).length;
    assert.equal(relists, lists + 1);
    assert.deepEqual(reflector.items.map((d) => d.metadata?.name).sort(), ["one", "three"]);
    api.delete("apps/v1", "Deployment", "three", "default");
    await waitForChanges(4);
    assert.deepEqual(changes[3], {
      type: "DELETED",
      name: "three",
      image: "reg/three:1",
      before: "reg/three:1",
    });
  });
});

describe("workload reflector without an API server", { timeout: 30_000 }, () => {
  test("reports the failure, keeps trying, and stops cleanly without ever listing", async () => {
    const gone = await startFakeApiServer();
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(gone.kubeconfigPath);
    await gone.stop();
    const errors: unknown[] = [];
    const apps = kubeConfig.makeApiClient(AppsV1Api);
    const reflector = new CollectionWatch<V1Deployment>({
      config: kubeConfig,
      path: "/apis/apps/v1/deployments",
      list: () => apps.listDeploymentForAllNamespaces({}),
      retryFirstList: true,
      onChange: () => assert.fail("no change without a server"),
      onError: (error) => errors.push(error),
    });
    const started = reflector.start();
    await until("the reflector's first error", () => errors.length > 0);
    reflector.stop();
    await started;
    assert.deepEqual(reflector.items, []);
  });

  test("without retryFirstList, start() rejects with the first list's failure (fail closed)", async () => {
    const gone = await startFakeApiServer();
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(gone.kubeconfigPath);
    await gone.stop();
    const apps = kubeConfig.makeApiClient(AppsV1Api);
    const watch = new CollectionWatch<V1Deployment>({
      config: kubeConfig,
      path: "/apis/apps/v1/deployments",
      list: () => apps.listDeploymentForAllNamespaces({}),
      onChange: () => assert.fail("no change without a server"),
      onError: () => assert.fail("the failure goes to the caller of start()"),
    });
    await assert.rejects(watch.start(), (error: Error) =>
      /ECONNREFUSED/.test(String((error.cause as Error | undefined)?.message)),
    );
    watch.stop();
    assert.deepEqual(watch.items, []);
  });
});
