// A peer that holds the key sends wrong bytes and then drops the connection: the pull must
// still complete with a verified blob, and the liar (never the registry or an honest peer)
// must be the one penalised. Real registry, real peer listener, real pull engine.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Metrics } from "../../src/observe/index.ts";
import {
  Liveness,
  PeerSource,
  peerCounters,
  rank,
  StaticMembership,
  startPeerServer,
  UpstreamAccess,
} from "../../src/peer/index.ts";
import { Puller } from "../../src/pull/index.ts";
import { RegistryClient } from "../../src/registry/index.ts";
import { Store } from "../../src/store/index.ts";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");

/**
 * A key-holding peer that answers 200 with the full Content-Length, sends `size / 2`
 * wrong bytes and closes the connection (what a liar or a corrupted node does).
 */
async function startLiar(size: number): Promise<{ address: string; server: Server }> {
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.once("data", () => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\nconnection: close\r\n\r\n`);
      socket.end(randomBytes(Math.floor(size / 2)), () => socket.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, server };
}

function close(server: Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

describe("a lying peer never fails a pull", () => {
  let registry: RunningRegistry;
  let image: BuiltImage;
  let dir: string;

  before(async () => {
    registry = await startRegistry();
    image = await pushImage(registry.host, "team/app", "v1", {
      layers: [[{ path: "data", size: 1_500_000 }]],
      compression: "none",
    });
    dir = await mkdtemp(join(tmpdir(), "ferry-peer-liar-"));
  });
  after(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A client-only node (no listener) that asks `members` before the registry. */
  async function node(name: string, members: string[]) {
    const metrics = new Metrics();
    const blamed: Array<{ peer: unknown; reason: unknown }> = [];
    const source = new PeerSource({
      liveness: new Liveness({ membership: new StaticMembership(members), self: undefined }),
      key,
      counters: peerCounters(metrics),
      log: (e) => blamed.push({ peer: e["peer"], reason: e["reason"] }),
    });
    const store = await Store.open(join(dir, name));
    const client = new RegistryClient();
    const puller = new Puller({ registry: client, store, blobLocator: source });
    return { store, client, puller, metrics, blamed };
  }

  it("a wrong prefix then a Range resume from the registry: restarts from zero, blames the liar", async () => {
    const layer = image.layers[0];
    assert.ok(layer);
    const liar = await startLiar(layer.size);
    const n = await node("a", [liar.address]);
    try {
      const repo = { domain: registry.host, path: "team/app" };
      const outcome = await n.puller.ensureBlob(repo, layer);
      assert.equal(outcome.downloaded, true);
      const bytes = await readFile(n.store.blobPath(layer.digest));
      assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, layer.digest);
      // The liar is blamed for bad bytes; nothing else is.
      assert.ok(
        n.blamed.some((b) => b.peer === liar.address && b.reason === "bad-bytes"),
        JSON.stringify(n.blamed),
      );
      assert.ok(n.blamed.every((b) => b.peer === liar.address));
      assert.equal(n.metrics.value("ferry_peer_errors_total", { reason: "bad-bytes" }), 1);
      // The registry served the resume and then the whole blob.
      const gets = (await registry.blobGets()).filter((g) => g.digest === layer.digest);
      assert.ok(gets.length >= 2, JSON.stringify(gets));
    } finally {
      await n.client.close();
      await close(liar.server);
    }
  });

  it("a wrong prefix then a Range resume from an honest peer: the honest peer is not penalised", async () => {
    const layer = image.layers[0];
    assert.ok(layer);
    // The honest peer: a real peer listener over a store holding the blob.
    const honestStore = await Store.open(join(dir, "honest"));
    const seed = await node("seed", []);
    await seed.puller.ensureBlob({ domain: registry.host, path: "team/app" }, layer);
    await seed.client.close();
    await honestStore.writeBlob(layer.digest, await readFile(seed.store.blobPath(layer.digest)));
    const honestClient = new RegistryClient();
    const counters = peerCounters(new Metrics());
    const honest = await startPeerServer({
      host: "127.0.0.1",
      port: 0,
      key,
      store: honestStore,
      fetcher: { ensureBlob: () => Promise.reject(new Error("stored: not used")) },
      source: new PeerSource({
        liveness: new Liveness({ membership: new StaticMembership([]), self: "127.0.0.1:1" }),
        key,
        counters,
        log: () => {},
      }),
      access: new UpstreamAccess({ registry: honestClient, servesPublicly: async () => true }),
      counters,
      log: () => {},
    });
    // A liar ranked first for this digest (rendezvous order depends on the addresses).
    let liar = await startLiar(layer.size);
    while (rank([liar.address, honest.address], layer.digest)[0] !== liar.address) {
      await close(liar.server);
      liar = await startLiar(layer.size);
    }
    const n = await node("b", [liar.address, honest.address]);
    const before = (await registry.blobGets()).filter((g) => g.digest === layer.digest).length;
    try {
      const outcome = await n.puller.ensureBlob({ domain: registry.host, path: "team/app" }, layer);
      assert.equal(outcome.downloaded, true);
      assert.equal(
        (outcome as { fromPeers?: number }).fromPeers,
        layer.size,
        "the whole blob came from the honest peer",
      );
      assert.ok(
        n.blamed.some((b) => b.peer === liar.address && b.reason === "bad-bytes"),
        JSON.stringify(n.blamed),
      );
      assert.ok(
        n.blamed.every((b) => b.peer !== honest.address),
        `honest peer blamed: ${JSON.stringify(n.blamed)}`,
      );
      const gets = (await registry.blobGets()).filter((g) => g.digest === layer.digest);
      assert.equal(gets.length, before, "node b's pull never reached the registry");
    } finally {
      await n.client.close();
      await honest.close();
      await honestClient.close();
      await close(liar.server);
    }
  });
});
