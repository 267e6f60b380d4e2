// The API client as the agent builds it: in a pod from the mounted ServiceAccount (token, CA,
// namespace) and KUBERNETES_SERVICE_HOST/PORT; elsewhere from a kubeconfig.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import { loadKubeClient } from "../../src/kube/index.ts";
import { isFerryError } from "../../src/observe/index.ts";
import { type FakeApiServer, startFakeApiServer } from "../fixtures/kube-apiserver.ts";

describe("Kubernetes API client setup", () => {
  let api: FakeApiServer;
  before(async () => {
    api = await startFakeApiServer();
    api.create({ apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } });
  });
  after(() => api.stop());

  test("in a pod: the ServiceAccount's token and CA, the service host, its namespace", async () => {
    const sa = await api.serviceAccountFor("system:serviceaccount:ops:ferry", "ops");
    const client = loadKubeClient({
      serviceAccountDir: sa.dir,
      env: { KUBERNETES_SERVICE_HOST: sa.host, KUBERNETES_SERVICE_PORT: sa.port },
    });
    assert.equal(client.source, "in-cluster");
    assert.equal(client.namespace, "ops");
    const node = await client.config.makeApiClient(CoreV1Api).readNode({ name: "node-a" });
    assert.equal(node.metadata?.name, "node-a");
    const call = api.calls.at(-1);
    assert.equal(call?.user, "system:serviceaccount:ops:ferry");
    assert.equal(call?.status, 200);
    // POD_NAMESPACE (downward API) wins over the mounted namespace
    const withEnv = loadKubeClient({
      serviceAccountDir: sa.dir,
      env: {
        KUBERNETES_SERVICE_HOST: sa.host,
        KUBERNETES_SERVICE_PORT: sa.port,
        POD_NAMESPACE: "ferry-system",
      },
    });
    assert.equal(withEnv.namespace, "ferry-system");
  });

  test("outside: a kubeconfig; a missing one is a FerryError with a hint", async () => {
    const client = loadKubeClient({ kubeconfig: api.kubeconfigPath, env: {} });
    assert.equal(client.source, api.kubeconfigPath);
    assert.equal(client.namespace, "default", "the context's namespace");
    const nodes = await client.config.makeApiClient(CoreV1Api).listNode();
    assert.deepEqual(
      nodes.items.map((n) => n.metadata?.name),
      ["node-a"],
    );
    assert.throws(
      () => loadKubeClient({ kubeconfig: join(api.caFile, "..", "nope.kubeconfig"), env: {} }),
      (e) =>
        isFerryError(e) && e.code === "FERRY_CONFIG_INVALID" && /--kubeconfig/.test(e.hint ?? ""),
    );
  });
});
