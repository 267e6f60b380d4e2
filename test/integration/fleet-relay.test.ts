// Relay trees (docs/fleet-scale.md) between real ferry processes in network namespaces:
// with --peer-fanout 1 a blob's owner serves one peer at a time and points the others at
// the peers receiving it, which relay the blob as it arrives.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { rank } from "../../src/peer/index.ts";
import {
  type Fleet,
  type FleetNode,
  fetchBlobs,
  fetchManifest,
  metricValue,
  type PulledImage,
  startFleet,
} from "../fixtures/fleet.ts";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { until, verifiedBlobs } from "./cli.ts";

const NAME = "relay/app";
const MiB = 1 << 20;
/** One dominant layer (about 3 s through the 40 Mbit upstream) and two small ones. */
const SPEC = {
  compression: "none" as const,
  layers: [
    [{ path: "big.bin", size: 16 * MiB }],
    [{ path: "small.bin", size: 512 * 1024 }],
    [{ path: "tiny.bin", size: 16 * 1024 }],
  ],
};
const FANOUT_1 = ["--peer-fanout", "1"];

async function notes(nodes: FleetNode[]): Promise<string> {
  return (await Promise.all(nodes.map((n) => n.notes()))).join("\n");
}

async function metric(node: FleetNode, name: string, labels = ""): Promise<number> {
  return metricValue(await node.metrics(), name, labels);
}

interface BlobInFlight {
  digest: string;
  servingTo: string[];
  receivingFrom?: string;
  depth: number;
}

/** The blobs in flight through a node, from its mirror's `/status`. */
function blobsInFlight(node: FleetNode): Promise<BlobInFlight[]> {
  return new Promise((resolve, reject) => {
    const req = request(`${node.mirrorUrl}/status`, { agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        text += d;
      });
      res.on("end", () => {
        const doc = JSON.parse(text) as { mirror?: { peers?: { blobs?: BlobInFlight[] } } };
        resolve(doc.mirror?.peers?.blobs ?? []);
      });
    });
    req.on("error", reject);
    req.end();
  });
}

async function assertStoreHolds(node: FleetNode, pulled: PulledImage): Promise<void> {
  const present = await verifiedBlobs(node.store);
  for (const b of pulled.blobs)
    assert.ok(present.includes(b.digest), `node ${node.index} lacks ${b.digest}`);
}

describe("fleet: relay trees in network namespaces", { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let image: BuiltImage;
  let big: BuiltImage["layers"][number];

  before(async () => {
    fleet = await startFleet({ nodes: 5, upstreamRate: "40mbit" });
    image = await pushImage(fleet.registry.host, NAME, "v1", SPEC);
    big = image.layers[0] as BuiltImage["layers"][number];
  });

  after(async () => {
    await fleet?.close();
  });

  it("with fan-out 1 the owner sends the large layer about once and peers relay it: one image upstream", async () => {
    const nodes = fleet.nodes;
    await Promise.all(nodes.map((n) => n.start({ peers: true, extraArgs: FANOUT_1 })));
    const before = await fleet.registry.blobBytes();
    const pulled = await Promise.all(
      nodes.map(async (n) => {
        const manifest = await fetchManifest(n.mirrorUrl, NAME, "v1");
        await fetchBlobs(n.mirrorUrl, NAME, manifest, { whole: true });
        return manifest;
      }),
    );
    const upstream = (await fleet.registry.blobBytes()) - before;
    const context = await notes(nodes);
    assert.ok(upstream <= 1.1 * image.totalSize, `upstream sent ${upstream}\n${context}`);
    for (const [i, n] of nodes.entries()) await assertStoreHolds(n, pulled[i] as PulledImage);
    const served = await Promise.all(nodes.map((n) => metric(n, "ferry_peer_served_bytes_total")));
    const redirects = await Promise.all(nodes.map((n) => metric(n, "ferry_peer_redirects_total")));
    // One hop would have the owner send the large layer four times.
    assert.ok(
      Math.max(...served) < 2 * big.size,
      `bytes served per node: ${served.join(", ")}\n${context}`,
    );
    assert.ok(served.filter((s) => s >= big.size).length >= 3, `relays: ${served.join(", ")}`);
    assert.ok(
      redirects.reduce((a, b) => a + b, 0) > 0,
      `redirects per node: ${redirects.join(", ")}`,
    );
  });

  it("a relay killed -9 mid-blob: the nodes below it resume elsewhere and finish with verified stores", async () => {
    const nodes = fleet.nodes;
    await Promise.all(nodes.map((n) => n.start({ peers: true, extraArgs: FANOUT_1 })));
    const owner = rank(
      nodes.map((n) => n.peerAddress),
      big.digest,
    )[0];
    const manifests = await Promise.all(nodes.map((n) => fetchManifest(n.mirrorUrl, NAME, "v1")));
    const pulls = new Map(
      nodes.map((n, i) => [
        n,
        fetchBlobs(n.mirrorUrl, NAME, manifests[i] as PulledImage, { whole: false }),
      ]),
    );
    // A relay: a node other than the owner sending the large layer to a peer while it receives it.
    const serving = `digest="${big.digest}"`;
    const relay = await until("a node relaying the large layer", async () => {
      for (const n of nodes) {
        if (n.peerAddress === owner) continue;
        if ((await metric(n, "ferry_peer_serving_peers", serving)) > 0) return n;
      }
      return undefined;
    });
    // Its status says whom it receives the layer from and whom it relays it to.
    const seen = await until("the relay's status showing the layer in flight", async () =>
      (await blobsInFlight(relay)).find(
        (b) => b.digest === big.digest && b.receivingFrom !== undefined && b.servingTo.length > 0,
      ),
    );
    assert.ok(seen.depth >= 1, JSON.stringify(seen));
    const relayBlobs = await verifiedBlobs(relay.store);
    assert.ok(!relayBlobs.includes(big.digest), "killed while the layer is still in flight");
    pulls.get(relay)?.catch(() => undefined); // dies with it
    await relay.kill();
    const survivors = nodes.filter((n) => n !== relay);
    await Promise.all(survivors.map((n) => pulls.get(n)));
    for (const n of survivors) await assertStoreHolds(n, manifests[n.index] as PulledImage);
    // Those below it abandoned it (or found it unreachable) and went elsewhere.
    const errors = await Promise.all(
      survivors.map((n) => metric(n, "ferry_peer_errors_total", 'reason="unreachable"')),
    );
    assert.ok(
      errors.reduce((a, b) => a + b, 0) > 0,
      `no node noticed the relay go\n${await notes(survivors)}`,
    );
  });
});
