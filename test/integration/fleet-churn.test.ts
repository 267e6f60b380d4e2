// Relay trees under trouble (docs/fleet-scale.md), real ferry processes in network
// namespaces, --peer-fanout 1 so that peers relay: a lying owner, members joining and
// leaving mid-rollout, a private image.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { rank } from "../../src/peer/index.ts";
import {
  type Fleet,
  type FleetNode,
  fetchBlobs,
  fetchManifest,
  metricValue,
  type PulledImage,
  peerGet,
  startFleet,
} from "../fixtures/fleet.ts";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { ingestFiles, until, verifiedBlobs } from "./cli.ts";

const NAME = "churn/app";
const PRIVATE = { user: "fleet", password: "s3cret-pass" };
const MiB = 1 << 20;
const SPEC = {
  compression: "none" as const,
  layers: [[{ path: "big.bin", size: 12 * MiB }], [{ path: "small.bin", size: 256 * 1024 }]],
};
const FANOUT_1 = ["--peer-fanout", "1"];

async function assertStoreHolds(node: FleetNode, pulled: PulledImage): Promise<void> {
  const present = await verifiedBlobs(node.store);
  for (const b of pulled.blobs)
    assert.ok(present.includes(b.digest), `node ${node.index} lacks ${b.digest}`);
}

/** Each node pulls the image through its mirror, whole bodies hashed by the client. */
function pullAll(nodes: FleetNode[], name = NAME, auth?: typeof PRIVATE) {
  return Promise.all(
    nodes.map(async (n) => {
      const manifest = await fetchManifest(n.mirrorUrl, name, "v1", auth);
      await fetchBlobs(n.mirrorUrl, name, manifest, {
        whole: true,
        ...(auth === undefined ? {} : { auth }),
      });
      return manifest;
    }),
  );
}

describe("fleet: relay trees under churn, lies and private images", { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let image: BuiltImage;
  let privateImage: BuiltImage;

  before(async () => {
    fleet = await startFleet({ nodes: 5, upstreamRate: "40mbit", privateRegistry: PRIVATE });
    image = await pushImage(fleet.registry.host, NAME, "v1", SPEC);
    privateImage = await pushImage(
      fleet.privateRegistry?.host ?? "",
      "secret/app",
      "v1",
      { ...SPEC, config: { "ferry.test": "private" } },
      { creds: `${PRIVATE.user}:${PRIVATE.password}` },
    );
  });

  after(async () => {
    await fleet?.close();
  });

  it("a lying owner: relays pass nothing bad on, no store holds a bad blob, the liar is caught", async () => {
    const big = image.layers[0]?.digest as string;
    const owner = rank(
      fleet.nodes.map((n) => n.peerAddress),
      big,
    )[0];
    const liar = fleet.nodes.find((n) => n.peerAddress === owner) as FleetNode;
    const honest = fleet.nodes.filter((n) => n !== liar);
    // It lies to the first asker of each blob and points the rest at that one, which relays.
    await liar.start({ peers: true, liar: true, liarRedirects: true });
    await Promise.all(honest.map((n) => n.start({ peers: true, extraArgs: FANOUT_1 })));
    // Clients hash every body they get: a relay that passed on a complete wrong body fails here.
    const pulled = await pullAll(honest);
    let badBytes = 0;
    for (const [i, n] of honest.entries()) {
      await assertStoreHolds(n, pulled[i] as PulledImage);
      badBytes += metricValue(await n.metrics(), "ferry_peer_errors_total", 'reason="bad-bytes"');
    }
    assert.ok(badBytes >= 1, "the lying peer was asked and caught");
    assert.match(await liar.notes(), /pointing \S+ at \S+/, "the lie went through a relay");
  });

  it("members joining and leaving mid-rollout: those running finish with verified stores", async () => {
    const [a, b, leaver, joiner, never] = fleet.nodes as [
      FleetNode,
      FleetNode,
      FleetNode,
      FleetNode,
      FleetNode,
    ];
    // Every node lists all five; one never starts, one joins late, one leaves mid-blob.
    await never.kill();
    await joiner.kill();
    const first = [a, b, leaver];
    await Promise.all(first.map((n) => n.start({ peers: true, extraArgs: FANOUT_1 })));
    const manifests = await Promise.all(first.map((n) => fetchManifest(n.mirrorUrl, NAME, "v1")));
    const pulls = first.map((n, i) =>
      fetchBlobs(n.mirrorUrl, NAME, manifests[i] as PulledImage, { whole: false }),
    );
    const big = `${image.layers[0]?.digest.slice(7)}.partial`;
    await until("the large layer in flight", async () => {
      for (const n of first) if ((await ingestFiles(n.store)).includes(big)) return true;
      return undefined;
    });
    await joiner.start({ peers: true, extraArgs: FANOUT_1 });
    const joined = pullAll([joiner]);
    pulls[2]?.catch(() => undefined); // leaves with its node
    await leaver.kill();
    await Promise.all([pulls[0], pulls[1]]);
    const [joinedManifest] = await joined;
    for (const [i, n] of [a, b].entries()) await assertStoreHolds(n, manifests[i] as PulledImage);
    await assertStoreHolds(joiner, joinedManifest as PulledImage);
  });

  // (A Basic credential never leaves its node, so with this htpasswd registry the readers
  // cannot prove access to each other either: each fetches upstream. A refusal is the point.)
  it("a private image: no node that holds it serves it to a member without a credential", async () => {
    const upstream = fleet.privateRegistry;
    assert.ok(upstream);
    const readers = fleet.nodes.slice(0, 4);
    const outsider = fleet.nodes[4] as FleetNode;
    await Promise.all(
      readers.map((n) =>
        n.start({ peers: true, upstream, credentials: PRIVATE, extraArgs: FANOUT_1 }),
      ),
    );
    await outsider.start({ peers: true, upstream, extraArgs: FANOUT_1 });
    const pulled = await pullAll(readers, "secret/app", PRIVATE);
    for (const [i, n] of readers.entries()) await assertStoreHolds(n, pulled[i] as PulledImage);
    // Every node that holds it refuses a fleet member without a credential.
    const layer = privateImage.layers[0] as BuiltImage["layers"][number];
    for (const n of readers) {
      const res = await peerGet(
        n.peerAddress,
        upstream.host,
        "secret/app",
        layer.digest,
        layer.size,
        {
          key: fleet.key,
          authorization: undefined,
        },
      );
      assert.equal(res.status, 403, `node ${n.index} answered ${res.status}`);
    }
    await assert.rejects(fetchManifest(outsider.mirrorUrl, "secret/app", "v1"), /401/);
    const stored = await verifiedBlobs(outsider.store);
    for (const b of pulled[0]?.blobs ?? [])
      assert.ok(!stored.includes(b.digest), `${b.digest} reached the outsider`);
  });
});
