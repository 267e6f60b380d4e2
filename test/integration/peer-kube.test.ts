// `ferry mirror --peers kubernetes`: the peer set of real mirror processes follows the
// ferry-peers EndpointSlices of the fake API server as kubectl adds and removes them, and
// blobs really travel between the mirrors while (and only while) both are members.
// Both mirrors are on 127.0.0.1, each named by its own slice (a slice carries its own port).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { rank } from "../../src/peer/index.ts";
import { fetchBlobs, fetchManifest, metricValue, type PulledImage } from "../fixtures/fleet.ts";
import { pushImage } from "../fixtures/images.ts";
import { startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { freePort, startRegistry } from "../fixtures/registry.ts";
import { type FerryProcess, isolatedEnv, removeDir, startFerry, tempDir } from "./cli.ts";
import { until } from "../fixtures/until.ts";

const execFileAsync = promisify(execFile);
const NAMESPACE = "ferry-system";
const USER = `system:serviceaccount:${NAMESPACE}:ferry`;

function slice(name: string, port: number) {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: NAMESPACE,
      labels: { "kubernetes.io/service-name": "ferry-peers" },
    },
    addressType: "IPv4",
    ports: [{ name: "peer", port, protocol: "TCP" }],
    endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }],
  };
}

/** The mirror's JSON log lines so far, and a way to wait for one. */
function logOf(proc: FerryProcess) {
  let text = "";
  proc.child.stderr?.on("data", (c: Buffer) => {
    text += c.toString("utf8");
  });
  const entries = () =>
    text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    text: () => text,
    waitFor(what: string, match: (e: Record<string, unknown>) => boolean) {
      return until(
        `a log line ${what}`,
        () => {
          const found = entries().find(match);
          if (found === undefined && proc.child.exitCode !== null)
            assert.fail(`ferry exited before a log line ${what}:\n${text}`);
          return found;
        },
        30_000,
        { context: () => text },
      );
    },
  };
}

async function metrics(mirrorUrl: string): Promise<string> {
  const res = await fetch(`${mirrorUrl}/metrics`);
  return res.text();
}

const image = (seed: string) => ({
  compression: "none" as const,
  layers: Array.from({ length: 6 }, (_, i) => [{ path: `${seed}-${i}.bin`, size: 96 * 1024 }]),
});

describe("ferry mirror --peers kubernetes", { timeout: 120_000 }, () => {
  test("the peer set follows the ferry-peers EndpointSlices; blobs come from a peer only while it is a member", async (t) => {
    const dir = await tempDir("peer-kube");
    t.after(() => removeDir(dir));
    const api = await startFakeApiServer();
    t.after(() => api.stop());
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const [portA, portB] = [await freePort(), await freePort()];
    const a = `127.0.0.1:${portA}`;
    const b = `127.0.0.1:${portB}`;
    const pushed = await pushImage(registry.host, "peers/one", "v1", image("one"));
    await pushImage(registry.host, "peers/two", "v1", image("two"));
    // Bytes of the blobs B owns among {A, B}: what A must get from B while B is a member.
    const ownedByB = (blobs: PulledImage["blobs"]) =>
      blobs.filter((x) => rank([a, b], x.digest)[0] === b).reduce((s, x) => s + x.size, 0);

    api.create(slice("ferry-peers-a", portA));
    const keyFile = join(dir, "peer.key");
    await writeFile(keyFile, "a fleet key of thirty-two bytes!\n");
    const kubeconfig = (await api.kubeconfigFor(USER)).path;
    const start = (name: string, peer: string) => {
      const proc = startFerry(
        [
          "mirror",
          "--listen",
          "127.0.0.1:0",
          "--upstream",
          registry.url,
          "--store",
          join(dir, name, "store"),
          "--peers",
          "kubernetes",
          "--peer-listen",
          peer,
          "--peer-key-file",
          keyFile,
        ],
        isolatedEnv(join(dir, name), { KUBECONFIG: kubeconfig, POD_NAMESPACE: NAMESPACE }),
      );
      t.after(async () => {
        proc.child.kill("SIGKILL");
        await proc.result;
      });
      return { proc, log: logOf(proc) };
    };
    const mirrorA = start("a", a);
    const mirrorB = start("b", b);
    const urlOf = async (m: typeof mirrorA) =>
      (await m.log.waitFor("mirror listening", (e) => e["msg"] === "mirror listening"))[
        "url"
      ] as string;
    const [urlA, urlB] = [await urlOf(mirrorA), await urlOf(mirrorB)];
    const up = await mirrorA.log.waitFor(
      "peer listener up",
      (e) => e["msg"] === "peer listener up",
    );
    assert.deepEqual(up["peers"], [], "A alone in the slices at first");
    assert.match(String(up["membership"]), /^kubernetes ferry-peers in ferry-system/);

    // B's slice appears: A's peer set gains B, and A fetches B's blobs from B.
    const file = join(dir, "slice-b.json");
    await writeFile(file, JSON.stringify(slice("ferry-peers-b", portB)));
    await execFileAsync("kubectl", ["--kubeconfig", api.kubeconfigPath, "create", "-f", file]);
    await mirrorA.log.waitFor(
      `peer members changed to [${b}]`,
      (e) => e["msg"] === "peer members changed" && JSON.stringify(e["peers"]) === `["${b}"]`,
    );
    const one = await fetchManifest(urlA, "peers/one", "v1");
    assert.equal(one.manifestDigest, pushed.manifestDigest);
    const expected = ownedByB(one.blobs);
    assert.ok(expected > 0, "the test image has blobs B owns (change its seed if not)");
    await fetchBlobs(urlA, "peers/one", one, { whole: true });
    const fromPeerA = () =>
      metrics(urlA).then((m) => metricValue(m, "ferry_peer_blob_bytes_total", 'source="peer"'));
    const servedB = () =>
      metrics(urlB).then((m) => metricValue(m, "ferry_peer_served_bytes_total"));
    assert.equal(await fromPeerA(), expected, mirrorA.log.text());
    assert.equal(await servedB(), expected, mirrorB.log.text());

    // B's slice goes: A's peer set is empty again, and A no longer asks B for anything.
    await execFileAsync("kubectl", [
      "--kubeconfig",
      api.kubeconfigPath,
      "delete",
      "endpointslice",
      "ferry-peers-b",
      "-n",
      NAMESPACE,
    ]);
    await mirrorA.log.waitFor(
      "peer members changed to []",
      (e) => e["msg"] === "peer members changed" && JSON.stringify(e["peers"]) === "[]",
    );
    const two = await fetchManifest(urlA, "peers/two", "v1");
    assert.ok(ownedByB(two.blobs) > 0, "B would own some of the second image's blobs");
    await fetchBlobs(urlA, "peers/two", two, { whole: true });
    assert.equal(await fromPeerA(), expected, "nothing more from peers");
    assert.equal(await servedB(), expected, "B served nothing more");

    // The mirrors' only API calls: list and watch EndpointSlices (what rbac.yaml grants).
    const calls = api.calls.filter((c) => c.user === USER).map((c) => `${c.verb} ${c.resource}`);
    assert.deepEqual([...new Set(calls)].sort(), ["list endpointslices", "watch endpointslices"]);
  });
});
