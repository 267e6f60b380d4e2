// The API client as the agent builds it: in a pod from the mounted ServiceAccount (token, CA,
// namespace) and KUBERNETES_SERVICE_HOST/PORT; elsewhere from a kubeconfig: an https:// API
// server, an http:// one as `kubectl proxy` serves it, and kubeconfigs that cannot work, each
// a FerryError with a hint rather than "a bug in ferry".
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import { loadKubeClient, startKubeAgent } from "../../src/kube/index.ts";
import { Metrics, isFerryError } from "../../src/observe/index.ts";
import { type FakeApiServer, startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { freePort } from "../fixtures/registry.ts";
import { removeDir, startFerry, tempDir, until } from "./cli.ts";

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
    // No kubeconfig anywhere: say so, not "cannot reach http://localhost:8080" (the library's fallback).
    assert.throws(
      () => loadKubeClient({ env: { HOME: join(api.caFile, "..", "no-home") } }),
      (e) =>
        isFerryError(e) &&
        e.code === "FERRY_CONFIG_INVALID" &&
        /^no kubeconfig: KUBECONFIG is not set, .*no-home\/\.kube\/config does not exist/.test(
          e.message,
        ),
    );
  });
});

describe("Kubernetes API client setup: plain HTTP and broken kubeconfigs", () => {
  let api: FakeApiServer;
  let work: string;
  let proxy: ChildProcess | undefined;
  let caData: string;
  before(async () => {
    api = await startFakeApiServer();
    api.create({ apiVersion: "v1", kind: "Node", metadata: { name: "node-p" } });
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ferry-system" } });
    work = await tempDir("kube-client");
    caData = (await readFile(api.caFile)).toString("base64");
  });
  after(async () => {
    proxy?.kill();
    await api.stop();
    await removeDir(work);
  });

  /** A kubeconfig with one cluster (its fields in `cluster`, YAML flow style) and one user. */
  const kubeconfig = async (name: string, cluster: string, user = "{}"): Promise<string> => {
    const path = join(work, `${name}.kubeconfig`);
    await writeFile(
      path,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: ${cluster}}]
users: [{name: u, user: ${user}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: ferry-system}}]
current-context: c
`,
    );
    return path;
  };

  test("an http:// server (kubectl proxy): ferry agent --kubernetes runs against it, as kubectl does", async () => {
    proxy = spawn(
      "kubectl",
      ["proxy", "--kubeconfig", api.kubeconfigPath, "--address", "127.0.0.1", "--port", "0"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let said = "";
    proxy.stdout?.on("data", (c: Buffer) => {
      said += c.toString("utf8");
    });
    const port = await until("kubectl proxy to listen", () => /127\.0\.0\.1:(\d+)/.exec(said)?.[1]);
    const config = await kubeconfig("proxy", `{server: "http://127.0.0.1:${port}"}`);
    const listen = await freePort();
    const agent = startFerry(
      [
        "agent",
        "--kubernetes",
        "--kubeconfig",
        config,
        "--listen",
        `127.0.0.1:${listen}`,
        "--target",
        "store",
        "--store",
        join(work, "store"),
        "--no-workload-prepull",
      ],
      // TMPDIR: where the agent keeps its merged list (this test's own directory)
      { NODE_NAME: "node-p", KUBECONFIG: undefined, TMPDIR: work },
    );
    try {
      const status = await until("the agent's /status", async () => {
        if (agent.child.exitCode !== null)
          assert.fail(`ferry exited: ${(await agent.result).stderr}`);
        const doc = await getJson(`http://127.0.0.1:${listen}/status`).catch(() => undefined);
        return doc;
      });
      assert.equal(status["node"], "node-p");
      assert.ok(
        api.calls.some((c) => c.user === "admin" && c.resource === "nodes"),
        "the agent's calls reached the API server through the proxy",
      );
    } finally {
      agent.child.kill("SIGTERM");
      const r = await agent.result;
      assert.doesNotMatch(r.stderr, /bug in ferry/);
    }
  });

  test("kubeconfigs that cannot work are FerryErrors with a hint, never 'a bug in ferry'", async () => {
    const closed = await freePort();
    const cases: Array<[string, string, string, string | undefined, RegExp]> = [
      [
        "refused",
        `{server: "https://127.0.0.1:${closed}", certificate-authority-data: ${caData}}`,
        "{token: admin-token}",
        "FERRY_UNREACHABLE",
        /cannot reach the Kubernetes API server/,
      ],
      [
        "unknown-ca",
        `{server: "${api.url}"}`,
        "{token: admin-token}",
        "FERRY_TLS",
        /TLS connection to the Kubernetes API server/,
      ],
      [
        "bad-token",
        `{server: "${api.url}", certificate-authority-data: ${caData}}`,
        "{token: not-a-token}",
        "FERRY_AUTH_REJECTED",
        /refused the credentials \(HTTP 401\)/,
      ],
      [
        "missing-ca-file",
        `{server: "${api.url}", certificate-authority: ${join(work, "no-ca.crt")}}`,
        "{token: admin-token}",
        "FERRY_CONFIG_INVALID",
        /names cannot be read: .*no-ca\.crt/,
      ],
      [
        "missing-plugin",
        `{server: "${api.url}", certificate-authority-data: ${caData}}`,
        `{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: ${join(work, "no-such-plugin")}}}`,
        "FERRY_CONFIG_INVALID",
        /credential plugin cannot be run/,
      ],
      [
        "no-scheme",
        `{server: "127.0.0.1:6443"}`,
        "{token: admin-token}",
        "FERRY_CONFIG_INVALID",
        /not an https:\/\/ or http:\/\/ URL/,
      ],
      [
        "failing-plugin",
        `{server: "${api.url}", certificate-authority-data: ${caData}}`,
        "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: /bin/false}}",
        "FERRY_CONFIG_INVALID",
        /the kubeconfig cannot be used/,
      ],
    ];
    for (const [name, cluster, user, code, message] of cases) {
      const path = await kubeconfig(name, cluster, user);
      await assert.rejects(
        async () => {
          const client = loadKubeClient({ kubeconfig: path, env: {} });
          const agent = await startKubeAgent({
            client,
            nodeName: "node-p",
            namespace: client.namespace,
            stateDir: join(work, `state-${name}`),
            metrics: new Metrics(),
            log: () => {},
          });
          await agent.stop();
        },
        (e) => {
          assert.ok(isFerryError(e), `${name}: ${String(e)}`);
          assert.equal(e.code, code, `${name}: ${e.message}`);
          assert.match(e.message, message, name);
          assert.ok(e.hint, `${name} has a hint`);
          return true;
        },
      );
    }
  });
});

function getJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}
