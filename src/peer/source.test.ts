import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FerryError, isFerryError, Metrics } from "../observe/index.ts";
import { Liveness } from "./liveness.ts";
import { parsePeerList, StaticMembership } from "./membership.ts";
import { peerCounters } from "./metrics.ts";
import { peerSettings } from "./options.ts";
import { rank } from "./rendezvous.ts";
import { PEER_AUTH_HEADER, verifyRequest } from "./signing.ts";
import { PeerSource, STORED_ONLY_HEADER, UPSTREAM_AUTH_HEADER } from "./source.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");
const members = ["198.18.0.10:5001", "198.18.0.11:5001", "198.18.0.12:5001", "198.18.0.13:5001"];
const repo = { domain: "198.18.0.2:5000", path: "team/app" };

function source(self: string | undefined) {
  const metrics = new Metrics();
  const liveness = new Liveness({ membership: new StaticMembership(members), self });
  const src = new PeerSource({ liveness, key, counters: peerCounters(metrics), log: () => {} });
  return { src, metrics, liveness };
}

/** A digest whose rendezvous owner among `members` is `owner`. */
function digestOwnedBy(owner: string): string {
  for (let i = 0; ; i++) {
    const d = `sha256:${createHash("sha256").update(String(i)).digest("hex")}`;
    if (rank(members, d)[0] === owner) return d;
  }
}

const ctx = { authorization: "Bearer tok", upstreamFailed: false };

describe("PeerSource", () => {
  it("sends a blob's owner the signed request, and goes upstream for blobs it owns itself", async () => {
    const [a, b] = members as [string, string];
    const { src } = source(a);
    const theirs = { mediaType: "x", digest: digestOwnedBy(b), size: 10 };
    const loc = await src.locate(repo, theirs, ctx);
    assert.equal(loc?.peer, b);
    const path = new URL(loc?.url ?? "").pathname + new URL(loc?.url ?? "").search;
    const sent = (name: string) => loc?.headers[name];
    assert.ok(verifyRequest(key, "GET", path, loc?.headers[PEER_AUTH_HEADER], Date.now(), sent));
    // the protocol headers are covered: a changed one breaks the signature
    const altered = (name: string) => (name === UPSTREAM_AUTH_HEADER ? "Bearer other" : sent(name));
    assert.ok(
      !verifyRequest(key, "GET", path, loc?.headers[PEER_AUTH_HEADER], Date.now(), altered),
    );
    assert.equal(loc?.headers[UPSTREAM_AUTH_HEADER], "Bearer tok");
    assert.equal(loc?.headers[STORED_ONLY_HEADER], undefined);
    assert.ok(src.fetchingFromPeer(theirs.digest));
    const mine = { mediaType: "x", digest: digestOwnedBy(a), size: 10 };
    assert.equal(await src.locate(repo, mine, ctx), undefined);
  });

  it("a member without a listener owns nothing: it asks each blob's owner, then the runner-ups, then the upstream", async () => {
    const { src } = source(undefined);
    for (const owner of members) {
      const desc = { mediaType: "x", digest: digestOwnedBy(owner), size: 10 };
      const seen: string[] = [];
      for (;;) {
        const loc = await src.locate(repo, desc, ctx);
        if (loc === undefined) break;
        seen.push(loc.peer);
        src.failed(loc, desc, new FerryError("FERRY_DENIED", "409"));
      }
      assert.deepEqual(seen, rank(members, desc.digest));
      src.settled(desc, undefined);
    }
  });

  it("after the owner fails, asks the runner-up, never the same peer twice for one blob", async () => {
    const [a, b] = members as [string, string];
    const { src, metrics } = source(a);
    const desc = { mediaType: "x", digest: digestOwnedBy(b), size: 10 };
    const order = rank(members, desc.digest);
    const seen: string[] = [];
    for (;;) {
      const loc = await src.locate(repo, desc, ctx);
      if (loc === undefined) break;
      seen.push(loc.peer);
      src.failed(loc, desc, new FerryError("FERRY_DIGEST_MISMATCH", "bad bytes"));
    }
    // Peers ranked above this node are tried in order; then this node fetches upstream.
    assert.deepEqual(seen, order.slice(0, order.indexOf(a)));
    assert.equal(metrics.value("ferry_peer_errors_total", { reason: "bad-bytes" }), seen.length);
    // A peer that sent bad bytes stays out for other blobs too, for a while.
    src.settled(desc, undefined);
    assert.equal(await src.locate(repo, desc, ctx), undefined);
  });

  it("with the upstream down, asks every live peer for a stored copy", async () => {
    const [a] = members as [string];
    const { src } = source(a);
    const desc = { mediaType: "x", digest: digestOwnedBy(a), size: 10 };
    const seen: string[] = [];
    for (;;) {
      const loc = await src.locate(repo, desc, { authorization: undefined, upstreamFailed: true });
      if (loc === undefined) break;
      assert.equal(loc.headers[STORED_ONLY_HEADER], "1");
      assert.equal(loc.headers[UPSTREAM_AUTH_HEADER], undefined);
      seen.push(loc.peer);
      src.failed(loc, desc, new FerryError("FERRY_BLOB_UNKNOWN", "not stored"));
    }
    assert.deepEqual([...seen].sort(), members.filter((m) => m !== a).sort());
  });

  it("fetches for a peer go upstream only (one hop, no loops)", async () => {
    const [a, b] = members as [string, string];
    const { src } = source(a);
    const desc = { mediaType: "x", digest: digestOwnedBy(b), size: 10 };
    const inside = await src.upstreamOnly(desc.digest, () => src.locate(repo, desc, ctx));
    assert.equal(inside, undefined);
    assert.equal((await src.locate(repo, desc, ctx))?.peer, b);
  });

  it("counts committed bytes by source", () => {
    const { src, metrics } = source(members[0] as string);
    src.settled(
      { mediaType: "x", digest: "sha256:" + "1".repeat(64), size: 30 },
      { fromPeers: 20, fromUpstream: 10 },
    );
    assert.equal(metrics.value("ferry_peer_blob_bytes_total", { source: "peer" }), 20);
    assert.equal(metrics.value("ferry_peer_blob_bytes_total", { source: "upstream" }), 10);
  });
});

describe("peer settings", () => {
  it("parses lists and refuses what no peer could reach", () => {
    assert.deepEqual(parsePeerList("198.18.0.10:5001, 198.18.0.11:5001,198.18.0.10:5001"), [
      "198.18.0.10:5001",
      "198.18.0.11:5001",
    ]);
    for (const bad of ["", "host", "host:0", "host:99999", "0.0.0.0:5001"]) {
      assert.throws(
        () => parsePeerList(bad),
        (e) => isFerryError(e, "FERRY_INVALID_ARGUMENT"),
        bad,
      );
    }
  });

  it("needs --peers, --peer-listen and --peer-key-file together", async () => {
    assert.equal(await peerSettings({}), undefined);
    await assert.rejects(peerSettings({ peers: "198.18.0.10:5001" }), (e) =>
      isFerryError(e, "FERRY_INVALID_ARGUMENT"),
    );
    await assert.rejects(peerSettings({ "peer-upload-limit": "10MiB" }), (e) =>
      isFerryError(e, "FERRY_INVALID_ARGUMENT"),
    );
  });

  it("a member without a listener needs --peers and --peer-key-file; `kubernetes` names the Service", async () => {
    const clientOnly = { clientOnly: true };
    assert.equal(await peerSettings({}, clientOnly), undefined);
    await assert.rejects(
      peerSettings({ peers: "198.18.0.10:5001" }, clientOnly),
      (e) => isFerryError(e, "FERRY_INVALID_ARGUMENT") && /--peer-key-file/.test(e.message),
    );
    const dir = await mkdtemp(join(tmpdir(), "ferry-peer-options-"));
    try {
      const keyFile = join(dir, "key");
      await writeFile(keyFile, key);
      const asks = await peerSettings(
        { peers: "198.18.0.10:5001,198.18.0.11:5001", "peer-key-file": keyFile },
        clientOnly,
      );
      assert.equal(asks?.listen, undefined);
      assert.deepEqual(asks?.members, {
        kind: "static",
        peers: ["198.18.0.10:5001", "198.18.0.11:5001"],
      });
      const kube = await peerSettings(
        { peers: "kubernetes", "peer-key-file": keyFile },
        clientOnly,
      );
      assert.deepEqual(kube?.members, { kind: "kubernetes", service: undefined });
      const named = await peerSettings({
        peers: "kubernetes:my-peers",
        "peer-listen": "198.18.0.10:5001",
        "peer-key-file": keyFile,
      });
      assert.deepEqual(named?.members, { kind: "kubernetes", service: "my-peers" });
      assert.equal(named?.listen?.self, "198.18.0.10:5001");
      await assert.rejects(
        peerSettings({ peers: "kubernetes:", "peer-key-file": keyFile }, clientOnly),
        (e) => isFerryError(e, "FERRY_INVALID_ARGUMENT") && /Service name/.test(e.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
