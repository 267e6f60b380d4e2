// Node-to-node sharing between real ferry processes, each in its own network namespace,
// with the upstream registry behind a rate-limited link (test/fixtures/fleet.ts).
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
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
import { freePort } from "../fixtures/registry.ts";
import {
  describeRun,
  ferry,
  ingestFiles,
  removeDir,
  startFerry,
  tempDir,
  until,
  untilLogged,
  verifiedBlobs,
} from "./cli.ts";

const NAME = "fleet/app";
const PRIVATE = { user: "fleet", password: "s3cret-pass" };
const MiB = 1 << 20;

/** ~40 MB in four uncompressed layers of seeded random bytes (no CPU spent compressing). */
const SPEC = {
  compression: "none" as const,
  layers: [
    [{ path: "big.bin", size: 24 * MiB }],
    [{ path: "mid.bin", size: 10 * MiB }],
    [{ path: "small.bin", size: 4 * MiB }],
    [{ path: "tiny.bin", size: 256 * 1024 }],
  ],
};

function imageBytes(image: BuiltImage): number {
  return image.totalSize;
}

/** Every blob of `image` is in the node's store, and every blob there hashes to its name. */
async function assertStoreHolds(node: FleetNode, pulled: PulledImage): Promise<void> {
  const present = await verifiedBlobs(node.store);
  for (const b of pulled.blobs)
    assert.ok(present.includes(b.digest), `node ${node.index} lacks ${b.digest}`);
}

async function notes(nodes: FleetNode[]): Promise<string> {
  return (await Promise.all(nodes.map((n) => n.notes()))).join("\n");
}

async function peerBytes(node: FleetNode, source: "peer" | "upstream"): Promise<number> {
  return metricValue(await node.metrics(), "ferry_peer_blob_bytes_total", `source="${source}"`);
}

describe("ferry mirror peer flags", () => {
  it("refuses incomplete or wrong peer settings with a clear message", async () => {
    const dir = await tempDir("ferry-peer-flags-");
    try {
      const store = ["--store", `${dir}/store`, "--listen", "127.0.0.1:0"];
      const alone = await ferry(["mirror", ...store, "--peers", "127.0.0.1:5001"]);
      assert.notEqual(alone.code, 0, describeRun(alone));
      assert.match(alone.stderr, /--peers, --peer-listen and --peer-key-file together/);
      await writeFile(`${dir}/short.key`, "tooshort\n");
      const short = await ferry([
        "mirror",
        ...store,
        "--peers",
        "127.0.0.1:5001",
        "--peer-listen",
        "127.0.0.1:5001",
        "--peer-key-file",
        `${dir}/short.key`,
      ]);
      assert.notEqual(short.code, 0, describeRun(short));
      assert.match(short.stderr, /at least 16 are needed/);
      const anywhere = await ferry([
        "mirror",
        ...store,
        "--peers",
        "127.0.0.1:5001",
        "--peer-listen",
        "0.0.0.0:5001",
        "--peer-key-file",
        `${dir}/short.key`,
      ]);
      assert.notEqual(anywhere.code, 0, describeRun(anywhere));
      assert.match(anywhere.stderr, /not an address other nodes can reach/);
    } finally {
      await removeDir(dir);
    }
  });
});

describe("peers: in the config file", () => {
  it("ferry mirror takes peers: from the config file, flags win; bad entries are refused with their position", async () => {
    const dir = await tempDir("ferry-peer-config-");
    try {
      await writeFile(`${dir}/peer.key`, "a fleet key of thirty-two bytes!\n");
      const port = await freePort();
      await writeFile(
        `${dir}/config.yaml`,
        [
          "peers:",
          "  members: [127.0.0.1:5901, 127.0.0.1:5902]",
          "  keyFile: peer.key", // relative to the config file
          `  listen: 127.0.0.1:${port}`,
          "",
        ].join("\n"),
      );
      const mirror = async (extra: string[]) => {
        const proc = startFerry([
          "mirror",
          "--listen",
          "127.0.0.1:0",
          "--store",
          `${dir}/store`,
          "--config",
          `${dir}/config.yaml`,
          ...extra,
        ]);
        let text = "";
        proc.child.stderr?.on("data", (c: Buffer) => {
          text += c.toString("utf8");
        });
        try {
          await untilLogged("the mirror listening", proc, () => text, /"msg":"mirror listening"/);
          const up = text.split("\n").find((l) => l.includes('"msg":"peer listener up"'));
          assert.ok(up, text);
          return JSON.parse(up) as { address: string; peers: string[] };
        } finally {
          proc.child.kill("SIGKILL");
          await proc.result;
        }
      };
      const fromConfig = await mirror([]);
      assert.equal(fromConfig.address, `127.0.0.1:${port}`);
      assert.deepEqual(fromConfig.peers, ["127.0.0.1:5901", "127.0.0.1:5902"]);
      const overridden = await mirror(["--peers", "127.0.0.1:5903"]);
      assert.deepEqual(overridden.peers, ["127.0.0.1:5903"]);

      // ferry pull (no listener) with members but no key: the message names both places.
      await writeFile(`${dir}/members-only.yaml`, "peers:\n  members: [127.0.0.1:5901]\n");
      const pull = await ferry([
        "pull",
        "--store",
        `${dir}/store`,
        "--config",
        `${dir}/members-only.yaml`,
        "127.0.0.1:5900/some/image:v1",
      ]);
      assert.notEqual(pull.code, 0, describeRun(pull));
      assert.match(
        pull.stderr,
        /--peers and --peer-key-file together \(config file: peers\.members/,
      );

      await writeFile(`${dir}/bad.yaml`, "peers:\n  members: 5\n  key: x\n");
      const bad = await ferry(["mirror", "--store", `${dir}/store`, "--config", `${dir}/bad.yaml`]);
      assert.notEqual(bad.code, 0, describeRun(bad));
      assert.match(bad.stderr, /bad\.yaml:2:\d+: peers\.members: expected a list of HOST:PORT/);
    } finally {
      await removeDir(dir);
    }
  });
});

describe("fleet: node-to-node sharing in network namespaces", { timeout: 180_000 }, () => {
  let fleet: Fleet;
  let image: BuiltImage;
  let privateImage: BuiltImage;

  before(async () => {
    fleet = await startFleet({ nodes: 4, upstreamRate: "200mbit", privateRegistry: PRIVATE });
    image = await pushImage(fleet.registry.host, NAME, "v1", SPEC);
    privateImage = await pushImage(
      fleet.privateRegistry?.host ?? "",
      "secret/app",
      "v1",
      { ...SPEC, layers: SPEC.layers.slice(1), config: { "ferry.test": "private" } },
      { creds: `${PRIVATE.user}:${PRIVATE.password}` },
    );
  });

  after(async () => {
    await fleet?.close();
  });

  /** `nodes` pull the image through their mirrors at once: ≤ 1.1× its bytes upstream, every store verified. */
  async function pullAtOnceAboutOneImageUpstream(nodes: FleetNode[]): Promise<void> {
    const before = await fleet.registry.blobBytes();
    const pulled = await Promise.all(
      nodes.map(async (n) => {
        const manifest = await fetchManifest(n.mirrorUrl, NAME, "v1");
        await fetchBlobs(n.mirrorUrl, NAME, manifest, { whole: true });
        return manifest;
      }),
    );
    const upstream = (await fleet.registry.blobBytes()) - before;
    const size = imageBytes(image);
    assert.ok(
      upstream <= 1.1 * size,
      `upstream sent ${upstream} blob bytes for a ${size}-byte image pulled by ${nodes.length} nodes\n${await notes(nodes)}`,
    );
    for (const [i, n] of nodes.entries()) await assertStoreHolds(n, pulled[i] as PulledImage);
  }

  it("all nodes pulling at once cost about one image of upstream traffic", async () => {
    // The three nodes list each other only: the fleet's fourth node (a pull-only client below)
    // runs no listener. A listed member that is down is the next test's case.
    const nodes = fleet.nodes.slice(0, 3);
    await Promise.all(nodes.map((n) => n.start({ peers: true, members: nodes })));
    await pullAtOnceAboutOneImageUpstream(nodes);
    const size = imageBytes(image);
    const fromPeers = await Promise.all(nodes.map((n) => peerBytes(n, "peer")));
    assert.ok(
      fromPeers.reduce((a, b) => a + b, 0) >= size,
      `bytes from peers per node: ${fromPeers.join(", ")}`,
    );
  });

  it("a listed member that is not running owns the biggest blob: all pulling at once still cost about one image upstream", async () => {
    // The node left down is the one rendezvous hashing makes owner of the 24 MiB layer: every
    // node tries it first, and the runner-up, while it still tries it too, holds the others'
    // requests for that blob instead of sending each of them to the registry (docs/peers.md).
    const big = image.layers.reduce((a, b) => (b.size > a.size ? b : a));
    const members = fleet.nodes.map((n) => n.peerAddress);
    const dead = fleet.nodes.find((n) => n.peerAddress === rank(members, big.digest)[0]);
    assert.ok(dead !== undefined);
    await dead.kill(); // left running by an earlier test, or never started
    const nodes = fleet.nodes.filter((n) => n !== dead);
    await Promise.all(nodes.map((n) => n.start({ peers: true, members: fleet.nodes })));
    await pullAtOnceAboutOneImageUpstream(nodes);
  });

  it("ferry pull --peers (no listener of its own) gets the blobs from the peers, as many bytes as they served", async (t) => {
    const servers = fleet.nodes.slice(0, 2);
    const client = fleet.nodes[3] as FleetNode;
    await Promise.all(servers.map((n) => n.start({ peers: true, members: servers })));
    const dir = await tempDir("ferry-fleet-pull-");
    try {
      await writeFile(
        `${dir}/config.yaml`,
        `registries:\n  "${fleet.registry.host}":\n    plainHttp: true\n`,
      );
      const upstreamBefore = await fleet.registry.blobBytes();
      const run = await client.ferry(
        [
          "pull",
          "--json",
          "--store",
          `${dir}/store`,
          "--config",
          `${dir}/config.yaml`,
          "--peers",
          servers.map((n) => n.peerAddress).join(","),
          "--peer-key-file",
          fleet.keyFile,
          `${fleet.registry.host}/${NAME}:v1`,
        ],
        { HOME: dir, DOCKER_CONFIG: `${dir}/.docker` },
      );
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const done = run.stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e["event"] === "done");
      assert.ok(done, run.stdout);
      const served = (
        await Promise.all(
          servers.map(async (n) => metricValue(await n.metrics(), "ferry_peer_served_bytes_total")),
        )
      ).reduce((a, b) => a + b, 0);
      const fromPeers = done["bytesFromPeers"] as number;
      const notesText = `${run.stderr}\n${await notes(servers)}`;
      assert.ok(fromPeers > 0, `no bytes from peers: ${JSON.stringify(done)}\n${notesText}`);
      assert.equal(fromPeers, served, `pull says ${fromPeers} from peers, peers served ${served}`);
      t.diagnostic(
        `bytesFromPeers ${fromPeers}, bytesFromRegistry ${String(done["bytesFromRegistry"])}, peers served ${served}`,
      );
      // Every layer came through the peers, which fetched each blob from the registry once.
      const layers = image.layers.reduce((sum, l) => sum + l.size, 0);
      assert.ok(fromPeers >= layers, `${fromPeers} from peers < ${layers} of layers`);
      const upstream = (await fleet.registry.blobBytes()) - upstreamBefore;
      assert.ok(upstream <= 1.1 * imageBytes(image), `upstream sent ${upstream}\n${notesText}`);
      const stored = await verifiedBlobs(`${dir}/store`);
      for (const l of image.layers) assert.ok(stored.includes(l.digest), `store lacks ${l.digest}`);
    } finally {
      await removeDir(dir);
    }
  });

  it("a peer serving corrupted bytes: no store holds a bad blob and the pulls complete", async () => {
    // The liar is the node that ranks first for the largest layer, so every honest node asks it.
    const big = image.layers[0]?.digest as string;
    const owner = rank(
      fleet.nodes.map((n) => n.peerAddress),
      big,
    )[0];
    const liar = fleet.nodes.find((n) => n.peerAddress === owner) as FleetNode;
    const honest = fleet.nodes.filter((n) => n !== liar);
    await liar.start({ peers: true, liar: true });
    await Promise.all(honest.map((n) => n.start({ peers: true })));
    const pulled = await Promise.all(
      honest.map(async (n) => {
        const manifest = await fetchManifest(n.mirrorUrl, NAME, "v1");
        await fetchBlobs(n.mirrorUrl, NAME, manifest, { whole: true });
        return manifest;
      }),
    );
    let badBytes = 0;
    for (const [i, n] of honest.entries()) {
      await assertStoreHolds(n, pulled[i] as PulledImage);
      badBytes += metricValue(await n.metrics(), "ferry_peer_errors_total", 'reason="bad-bytes"');
    }
    assert.ok(badBytes >= 1, "the lying peer was asked and caught");
  });

  it("the owner killed -9 mid-transfer: the others finish with verified stores", async () => {
    const nodes = fleet.nodes.slice(0, 3);
    await Promise.all(nodes.map((n) => n.start({ peers: true, members: nodes })));
    const big = image.layers[0] as BuiltImage["layers"][number];
    const ranking = rank(
      nodes.map((n) => n.peerAddress),
      big.digest,
    );
    const victim = nodes.find((n) => n.peerAddress === ranking[0]) as FleetNode;
    const survivors = nodes.filter((n) => n !== victim);
    const manifests = await Promise.all(
      survivors.map((n) => fetchManifest(n.mirrorUrl, NAME, "v1")),
    );
    // The victim's own pull is not awaited: it dies with it.
    fetchManifest(victim.mirrorUrl, NAME, "v1")
      .then((m) => fetchBlobs(victim.mirrorUrl, NAME, m, { whole: false }))
      .catch(() => undefined);
    const pulls = survivors.map((n, i) =>
      fetchBlobs(n.mirrorUrl, NAME, manifests[i] as PulledImage, { whole: false }),
    );
    // Kill the owner once a survivor is receiving the big layer from it.
    const partial = `${big.digest.slice(7)}.partial`;
    await until("a survivor receiving the large layer", async () => {
      for (const n of survivors) if ((await ingestFiles(n.store)).includes(partial)) return true;
      return undefined;
    });
    await victim.kill();
    await Promise.all(pulls);
    for (const [i, n] of survivors.entries())
      await assertStoreHolds(n, manifests[i] as PulledImage);
  });

  it("a node without credentials for a private image cannot get its blobs from peers", async () => {
    const upstream = fleet.privateRegistry;
    assert.ok(upstream);
    const [holder, other] = fleet.nodes as [FleetNode, FleetNode];
    await holder.start({ peers: true, upstream, credentials: PRIVATE });
    await other.start({ peers: true, upstream });
    const pulled = await fetchManifest(holder.mirrorUrl, "secret/app", "v1", PRIVATE);
    await fetchBlobs(holder.mirrorUrl, "secret/app", pulled, { whole: false, auth: PRIVATE });
    const layer = privateImage.layers[0] as BuiltImage["layers"][number];
    const ask = (authorization: string | undefined, signed = true) =>
      peerGet(holder.peerAddress, upstream.host, "secret/app", layer.digest, layer.size, {
        key: signed ? fleet.key : Buffer.from("not the fleet key at all"),
        authorization,
      });
    const good = `Basic ${Buffer.from(`${PRIVATE.user}:${PRIVATE.password}`).toString("base64")}`;
    const wrong = `Basic ${Buffer.from(`${PRIVATE.user}:guess`).toString("base64")}`;
    // A fleet member (it has the key) with no or wrong upstream credentials is refused...
    assert.equal((await ask(undefined)).status, 403);
    assert.equal((await ask(wrong)).status, 403);
    // ...one without the fleet key is refused before anything else...
    assert.equal((await ask(good, false)).status, 401);
    // ...and one that proves it can read the repository upstream gets the bytes.
    const ok = await ask(good);
    assert.equal(ok.status, 200);
    assert.equal(ok.bytes, layer.size);
    // Through its own mirror, the node without credentials gets nothing either.
    await assert.rejects(fetchManifest(other.mirrorUrl, "secret/app", "v1"), /401/);
    const stored = await verifiedBlobs(other.store);
    for (const b of pulled.blobs) assert.ok(!stored.includes(b.digest), `${b.digest} reached it`);
  });

  it("the upstream gone after one node has the image: the others still get it", async () => {
    const nodes = fleet.nodes.slice(0, 3);
    const [first, ...others] = nodes as [FleetNode, ...FleetNode[]];
    await Promise.all(nodes.map((n) => n.start({ peers: true, members: nodes })));
    const pulled = await fetchManifest(first.mirrorUrl, NAME, "v1");
    await fetchBlobs(first.mirrorUrl, NAME, pulled, { whole: false });
    // The others have resolved the tag (the manifest, a few hundred bytes). As owners of some
    // blobs they may already hold those (fetched for the first node); the rest must come
    // from peers once the upstream is gone.
    const manifests = await Promise.all(others.map((n) => fetchManifest(n.mirrorUrl, NAME, "v1")));
    const missing = await Promise.all(
      others.map(async (n, i) => {
        const held = await verifiedBlobs(n.store);
        return (manifests[i] as PulledImage).blobs.filter((b) => !held.includes(b.digest));
      }),
    );
    const peerBefore = await Promise.all(others.map((n) => peerBytes(n, "peer")));
    assert.ok(
      missing.some((m) => m.length > 0),
      "some blobs are left to fetch from peers",
    );
    await fleet.registry.stop();
    await Promise.all(
      others.map((n, i) =>
        fetchBlobs(n.mirrorUrl, NAME, manifests[i] as PulledImage, { whole: true }),
      ),
    );
    for (const [i, n] of others.entries()) {
      await assertStoreHolds(n, manifests[i] as PulledImage);
      const fromPeers = (await peerBytes(n, "peer")) - (peerBefore[i] as number);
      const needed = (missing[i] ?? []).reduce((sum, b) => sum + b.size, 0);
      // (A transfer resumed from a second peer counts only its own part, so not `=== needed`.)
      assert.ok(
        needed === 0 ? fromPeers === 0 : fromPeers > 0 && fromPeers <= needed,
        `node ${n.index}: ${fromPeers} bytes from peers for ${needed} missing\n${await notes(nodes)}`,
      );
    }
  });
});
