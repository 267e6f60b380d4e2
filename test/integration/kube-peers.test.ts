// Peer membership from the ferry-peers EndpointSlices, watched through the fake API server and
// changed with kubectl: ready endpoints only, the named port, other Services ignored.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { loadKubeClient, startPeerMembership } from "../../src/kube/index.ts";
import { type FakeApiServer, startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { until } from "../fixtures/until.ts";

const execFileAsync = promisify(execFile);

function slice(name: string, service: string, endpoints: { ip: string; ready?: boolean }[]) {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: "ferry-system",
      labels: { "kubernetes.io/service-name": service },
    },
    addressType: "IPv4",
    ports: [
      { name: "http", port: 5000, protocol: "TCP" },
      { name: "peer", port: 5001, protocol: "TCP" },
    ],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
    })),
  };
}

describe("peer membership from EndpointSlices", () => {
  let api: FakeApiServer;
  before(async () => {
    api = await startFakeApiServer();
  });
  after(() => api.stop());

  test("members follow the slices of ferry-peers; not-ready endpoints and other Services are left out", async () => {
    api.create(
      slice("ferry-peers-a", "ferry-peers", [
        { ip: "198.18.0.2" },
        { ip: "198.18.0.3", ready: false },
      ]),
    );
    api.create(slice("other-a", "other", [{ ip: "198.18.0.9" }]));
    const kubeconfig = (await api.kubeconfigFor("system:serviceaccount:ferry-system:ferry")).path;
    const client = loadKubeClient({ kubeconfig, env: { POD_NAMESPACE: "ferry-system" } });
    const membership = await startPeerMembership({
      config: client.config,
      namespace: client.namespace,
      log: () => {},
    });
    try {
      assert.deepEqual(membership.members(), ["198.18.0.2:5001"]);
      let changes = 0;
      membership.onChange(() => changes++);
      const file = join(api.caFile, "..", "slice.json");
      await writeFile(
        file,
        JSON.stringify(slice("ferry-peers-b", "ferry-peers", [{ ip: "198.18.0.4", ready: true }])),
      );
      await execFileAsync("kubectl", ["--kubeconfig", api.kubeconfigPath, "create", "-f", file]);
      await until(
        "the second slice's peer in the membership",
        () => membership.members().length >= 2,
        10_000,
      );
      assert.deepEqual(membership.members(), ["198.18.0.2:5001", "198.18.0.4:5001"]);
      assert.equal(changes, 1);
      await execFileAsync("kubectl", [
        "--kubeconfig",
        api.kubeconfigPath,
        "delete",
        "endpointslice",
        "ferry-peers-a",
        "-n",
        "ferry-system",
      ]);
      await until("the deleted slice's peer gone", () => membership.members().length === 1, 10_000);
      assert.deepEqual(membership.members(), ["198.18.0.4:5001"]);
      const mine = api.calls
        .filter((c) => c.user === "system:serviceaccount:ferry-system:ferry")
        .map((c) => `${c.verb} ${c.resource}`);
      assert.deepEqual([...new Set(mine)].sort(), ["list endpointslices", "watch endpointslices"]);
    } finally {
      membership.stop();
    }
  });
});
