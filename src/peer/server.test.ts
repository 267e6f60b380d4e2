import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { once } from "node:events";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IGNORED_RANGES } from "../../test/fixtures/ranges.ts";
import { until } from "../../test/fixtures/until.ts";
import { Metrics } from "../observe/index.ts";
import { RegistryClient, type Repository } from "../registry/index.ts";
import { Store } from "../store/index.ts";
import { UpstreamAccess } from "./access.ts";
import { Liveness } from "./liveness.ts";
import { StaticMembership } from "./membership.ts";
import { peerCounters } from "./metrics.ts";
import { rank } from "./rendezvous.ts";
import {
  acceptableNamespace,
  type BlobFetcher,
  type RunningPeerServer,
  startPeerServer,
} from "./server.ts";
import { signRequest } from "./signing.ts";
import { type BlobDescriptor, PeerSource } from "./source.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");
/** This node's peer address in these tests (never dialled). */
const SELF = "127.0.0.1:1";
const NS = "registry.invalid:5000";

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * Stands in for the pull engine's download (an internal step, not a service): writes the
 * ingest file in steps the test releases, reports growth, then renames it into place.
 */
class SteppedFetcher implements BlobFetcher {
  readonly #store: Store;
  readonly #chunks: Buffer[];
  #release: Array<() => void> = [];
  #steps: Array<Promise<void>> = [];
  replaceAfterFirst = false;

  constructor(store: Store, chunks: Buffer[]) {
    this.#store = store;
    this.#chunks = chunks;
    for (let i = 0; i <= chunks.length; i++)
      this.#steps.push(new Promise<void>((r) => this.#release.push(r)));
  }

  step(i: number): void {
    this.#release[i]?.();
  }

  async ensureBlob(
    _repo: Repository,
    desc: BlobDescriptor,
    options: { watch?: (current: number) => void } = {},
  ): Promise<{ downloaded: boolean; fetched: number }> {
    const path = this.#store.ingestPath(desc.digest);
    await mkdir(dirname(path), { recursive: true });
    let written = Buffer.alloc(0);
    for (const [i, chunk] of this.#chunks.entries()) {
      await this.#steps[i];
      if (i === 1 && this.replaceAfterFirst) {
        // A failed check deleted the partial; the next download starts a new file.
        await rm(path);
        written = Buffer.alloc(0);
      }
      written = Buffer.concat([written, chunk]);
      await writeFile(path, written);
      options.watch?.(written.length);
    }
    await this.#steps[this.#chunks.length];
    await rename(path, this.#store.blobPath(desc.digest));
    return { downloaded: true, fetched: written.length };
  }
}

function get(
  address: string,
  path: string,
  headers: Record<string, string>,
  progress: { bytes: number } = { bytes: 0 },
): Promise<{ status: number; body: Buffer; complete: boolean }> {
  return new Promise((resolve) => {
    const req = request(`http://${address}${path}`, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        progress.bytes += c.length;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: true }),
      );
      res.on("error", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: false }),
      );
    });
    req.on("error", () => resolve({ status: 0, body: Buffer.alloc(0), complete: false }));
    req.end();
  });
}

function signed(path: string, size: number, extra: Record<string, string> = {}) {
  return {
    "x-ferry-peer-auth": signRequest(key, "GET", path),
    "x-ferry-size": String(size),
    ...extra,
  };
}

describe("peer listener", () => {
  let dir: string;
  let store: Store;
  let registry: RegistryClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-peer-server-"));
    store = await Store.open(join(dir, "store"));
    registry = new RegistryClient();
  });
  after(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(
    fetcher: BlobFetcher,
    open = true,
    options: { members?: string[]; holdMs?: number; onSource?: (s: PeerSource) => void } = {},
  ): Promise<RunningPeerServer> {
    const metrics = new Metrics();
    const counters = peerCounters(metrics);
    const liveness = new Liveness({
      membership: new StaticMembership(options.members ?? []),
      self: SELF,
    });
    const source = new PeerSource({ liveness, key, counters, log: () => {} });
    options.onSource?.(source);
    return startPeerServer({
      host: "127.0.0.1",
      port: 0,
      key,
      store,
      fetcher,
      source,
      access: new UpstreamAccess({ registry, servesPublicly: async () => open }),
      counters,
      log: () => {},
      ...(options.holdMs === undefined ? {} : { holdMs: options.holdMs }),
    });
  }

  /**
   * This node starts fetching a blob from `owner` (a member ranked above it that never
   * answers, as a listed member not running yet), and a peer asks this node for it.
   */
  /** `asker`: headers of the asking peer (e.g. its depth in the blob's relay tree). */
  async function whileFetchingFromOwner(
    owner: string,
    holdMs: number,
    asker: Record<string, string> = {},
  ) {
    let chunks: Buffer[];
    let digest: string;
    do {
      chunks = [randomBytes(40_000), randomBytes(40_000)];
      digest = digestOf(Buffer.concat(chunks));
    } while (rank([SELF, owner], digest)[0] !== owner);
    const bytes = Buffer.concat(chunks);
    const fetcher = new SteppedFetcher(store, chunks);
    let source: PeerSource | undefined;
    let holding = false;
    const server = await serve(fetcher, true, {
      members: [owner],
      holdMs,
      onSource: (s) => {
        source = s;
        // Observed, not replaced: the server waits here while it holds a request.
        const whenNotFromPeer = s.whenNotFromPeer.bind(s);
        s.whenNotFromPeer = (d, ms) => {
          holding = true;
          return whenNotFromPeer(d, ms);
        };
      },
    });
    const desc = { mediaType: "application/octet-stream", digest, size: bytes.length };
    const repo = { domain: NS, path: "team/app" };
    const ctx = { authorization: undefined, upstreamFailed: false };
    const location = await (source as PeerSource).locate(repo, desc, ctx);
    assert.equal(location?.peer, owner, "this node fetches from the owner");
    const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
    const started = Date.now();
    const response = get(server.address, path, signed(path, bytes.length, asker));
    return {
      server,
      fetcher,
      source: source as PeerSource,
      repo,
      desc,
      bytes,
      started,
      response,
      holding: () => holding,
      ownerFailed: () =>
        (source as PeerSource).failed(
          location as NonNullable<typeof location>,
          desc,
          Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
        ),
    };
  }

  /** An asker that relays the blob at depth 1 itself: this node (depth 1 too) must not feed it. */
  const SHALLOW = { "x-ferry-depth": "1" };

  it("relays a blob it is fetching from a peer to an asker that relays nothing, joining that fetch", async () => {
    const t = await whileFetchingFromOwner("127.0.0.2:9", 10_000);
    try {
      t.fetcher.step(0);
      await until("the relay streams the first bytes", async () =>
        t.source.fetchingFromPeer(t.desc.digest),
      );
      // Still fetching from the owner, not from the upstream on the asker's behalf.
      const again = await t.source.locate(t.repo, t.desc, {
        authorization: undefined,
        upstreamFailed: false,
      });
      assert.equal(again?.peer, "127.0.0.2:9");
      for (const i of [1, 2]) t.fetcher.step(i);
      const res = await t.response;
      assert.equal(res.status, 200);
      assert.ok(res.complete && res.body.equals(t.bytes));
    } finally {
      await t.server.close();
    }
  });

  it("holds a request for a blob it is fetching from a peer, then serves it from the upstream fetch", async () => {
    const t = await whileFetchingFromOwner("127.0.0.2:9", 10_000, SHALLOW);
    try {
      let answered = false;
      t.response.then(() => {
        answered = true;
      });
      await until("the request held", () => t.holding());
      assert.equal(answered, false, "held, not refused, while the owner is being tried");
      t.ownerFailed(); // the owner is gone: this node moves on (here: the upstream, stepped)
      for (const i of [0, 1, 2]) t.fetcher.step(i);
      const res = await t.response;
      assert.equal(res.status, 200);
      assert.ok(res.complete && res.body.equals(t.bytes));
    } finally {
      await t.server.close();
    }
  });

  it("answers 409 after the hold if it is still fetching from a peer", async () => {
    const t = await whileFetchingFromOwner("127.0.0.2:9", 200, SHALLOW);
    try {
      const res = await t.response;
      assert.equal(res.status, 409);
      assert.ok(Date.now() - t.started >= 180, "after the hold");
    } finally {
      await t.server.close();
    }
  });

  it("answers 409 at once when the asker is the peer it is fetching from (no mutual wait)", async () => {
    const t = await whileFetchingFromOwner("127.0.0.1:9", 10_000);
    try {
      const res = await t.response;
      assert.equal(res.status, 409);
      assert.ok(Date.now() - t.started < 5_000, "not held");
    } finally {
      await t.server.close();
    }
  });

  it("serves a stored blob whole and by range, only to signed requests", async () => {
    const bytes = randomBytes(100_000);
    const digest = digestOf(bytes);
    await store.writeBlob(digest, bytes);
    const server = await serve({ ensureBlob: () => Promise.reject(new Error("not used")) });
    try {
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      const whole = await get(server.address, path, signed(path, bytes.length));
      assert.equal(whole.status, 200);
      assert.ok(whole.body.equals(bytes));
      const part = await get(
        server.address,
        path,
        signed(path, bytes.length, { range: "bytes=1000-" }),
      );
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(bytes.subarray(1000)));
      const other = `/v2/team/other/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      assert.equal((await get(server.address, path, signed(other, bytes.length))).status, 401);
      assert.equal((await get(server.address, path, {})).status, 401);
      assert.equal((await get(server.address, "/healthz", {})).status, 200);
    } finally {
      await server.close();
    }
  });

  it("answers a malformed Range with the whole blob, as the mirror does; 416 past the end", async () => {
    const bytes = randomBytes(30_000);
    const digest = digestOf(bytes);
    await store.writeBlob(digest, bytes);
    const server = await serve({ ensureBlob: () => Promise.reject(new Error("not used")) });
    try {
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      for (const range of IGNORED_RANGES) {
        const got = await get(server.address, path, signed(path, bytes.length, { range }));
        assert.equal(got.status, 200, range);
        assert.ok(got.body.equals(bytes), range);
      }
      const past = await get(
        server.address,
        path,
        signed(path, bytes.length, { range: `bytes=${bytes.length}-` }),
      );
      assert.equal(past.status, 416);
    } finally {
      await server.close();
    }
  });

  it("refuses an ns that is not a registry host, or names a link-local/metadata address", async () => {
    for (const ok of ["registry.invalid:5000", "docker.io", "127.0.0.1:5000", "[::1]:5000", NS])
      assert.equal(acceptableNamespace(ok), true, ok);
    for (const bad of [
      "169.254.169.254",
      "169.254.169.254:80",
      "[::ffff:169.254.169.254]",
      "[fe80::1]:5000",
      "0.0.0.0:5000",
      "user@registry.invalid",
      "registry.invalid/path",
      "registry.invalid:5000?x=1",
      "http://registry.invalid",
    ])
      assert.equal(acceptableNamespace(bad), false, bad);
    let fetched = 0;
    const server = await serve({
      ensureBlob: () => {
        fetched++;
        return Promise.reject(new Error("must not be asked"));
      },
    });
    try {
      const digest = `sha256:${"b".repeat(64)}`;
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent("169.254.169.254")}`;
      const res = await get(server.address, path, signed(path, 10));
      assert.equal(res.status, 400);
      assert.equal(fetched, 0);
    } finally {
      await server.close();
    }
  });

  it("a signature that covers headers binds them; protocol headers it leaves out are ignored", async () => {
    const seen: Array<string | undefined> = [];
    class RecordingAccess extends UpstreamAccess {
      override check(_repo: Repository, _digest: string, presented: string | undefined) {
        seen.push(presented);
        return Promise.resolve("denied" as const);
      }
    }
    const counters = peerCounters(new Metrics());
    const server = await startPeerServer({
      host: "127.0.0.1",
      port: 0,
      key,
      store,
      fetcher: { ensureBlob: () => Promise.reject(new Error("not used")) },
      source: new PeerSource({
        liveness: new Liveness({ membership: new StaticMembership([]), self: "127.0.0.1:1" }),
        key,
        counters,
        log: () => {},
      }),
      access: new RecordingAccess({ registry }),
      counters,
      log: () => {},
    });
    try {
      const digest = `sha256:${"c".repeat(64)}`;
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      const covered = { "x-ferry-size": "10", "x-ferry-upstream-authorization": "Bearer mine" };
      const sig = (c: Record<string, string>) => signRequest(key, "GET", path, Date.now(), c);
      // Sent as signed: the credential reaches the access check.
      const ok = await get(server.address, path, { ...covered, "x-ferry-peer-auth": sig(covered) });
      assert.equal(ok.status, 403);
      // A covered header changed on the way: refused before anything else.
      const changed = await get(server.address, path, {
        ...covered,
        "x-ferry-upstream-authorization": "Bearer stolen",
        "x-ferry-peer-auth": sig(covered),
      });
      assert.equal(changed.status, 401);
      // A credential added outside the covered set is not used.
      const added = await get(server.address, path, {
        "x-ferry-size": "10",
        "x-ferry-upstream-authorization": "Bearer added",
        "x-ferry-peer-auth": sig({ "x-ferry-size": "10" }),
      });
      assert.equal(added.status, 403);
      assert.deepEqual(seen, ["Bearer mine", undefined]);
    } finally {
      await server.close();
    }
  });

  it("refuses a signed request sent a second time (a replay, even with other headers)", async () => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes);
    await store.writeBlob(digest, bytes);
    const server = await serve({ ensureBlob: () => Promise.reject(new Error("not used")) });
    try {
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      const headers = signed(path, bytes.length);
      assert.equal((await get(server.address, path, headers)).status, 200);
      const again = await get(server.address, path, { ...headers, range: "bytes=10-" });
      assert.equal(again.status, 401);
      assert.equal((await get(server.address, path, signed(path, bytes.length))).status, 200);
    } finally {
      await server.close();
    }
  });

  it("closes connections beyond its limit", async () => {
    const server = await startPeerServer({
      host: "127.0.0.1",
      port: 0,
      key,
      store,
      fetcher: { ensureBlob: () => Promise.reject(new Error("not used")) },
      source: new PeerSource({
        liveness: new Liveness({ membership: new StaticMembership([]), self: "127.0.0.1:1" }),
        key,
        counters: peerCounters(new Metrics()),
        log: () => {},
      }),
      access: new UpstreamAccess({ registry }),
      counters: peerCounters(new Metrics()),
      log: () => {},
      maxConnections: 1,
    });
    const [host, port] = server.address.split(":") as [string, string];
    const first = connect(Number(port), host);
    try {
      await once(first, "connect");
      first.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      await once(first, "data"); // the first connection is served and kept open
      const second = connect(Number(port), host);
      second.on("error", () => undefined);
      second.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      let answered = false;
      second.on("data", () => {
        answered = true;
      });
      await once(second, "close");
      assert.equal(answered, false, "the connection over the limit was closed unanswered");
    } finally {
      first.destroy();
      await server.close();
    }
  });

  it("refuses when the repository's access cannot be shown", async () => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes);
    await store.writeBlob(digest, bytes);
    // Not public, and the upstream (nothing listens at registry.invalid) cannot be asked.
    const server = await serve({ ensureBlob: () => Promise.reject(new Error("not used")) }, false);
    try {
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent("127.0.0.1:9")}`;
      const res = await get(server.address, path, signed(path, bytes.length));
      assert.equal(res.status, 503);
      assert.equal(res.body.includes(bytes), false);
    } finally {
      await server.close();
    }
  });

  it("streams a blob while it downloads, the last byte only once it is committed", async () => {
    const chunks = [randomBytes(50_000), randomBytes(50_000)];
    const bytes = Buffer.concat(chunks);
    const digest = digestOf(bytes);
    const fetcher = new SteppedFetcher(store, chunks);
    const server = await serve(fetcher);
    try {
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      const progress = { bytes: 0 };
      const response = get(server.address, path, signed(path, bytes.length), progress);
      fetcher.step(0);
      fetcher.step(1);
      await until("all but the last byte sent", () => progress.bytes >= bytes.length - 1);
      assert.equal(progress.bytes, bytes.length - 1, "all but the last byte before the commit");
      fetcher.step(2);
      const res = await response;
      assert.equal(res.status, 200);
      assert.ok(res.complete);
      assert.ok(res.body.equals(bytes));
    } finally {
      await server.close();
    }
  });

  it("cuts the stream when the download restarts in a new file", async () => {
    const chunks = [Buffer.alloc(50_000, 1), randomBytes(60_000)];
    const good = randomBytes(110_000);
    const digest = digestOf(good);
    const fetcher = new SteppedFetcher(store, chunks);
    fetcher.replaceAfterFirst = true;
    const server = await serve(fetcher);
    try {
      const path = `/v2/team/app/blobs/${digest}?ns=${encodeURIComponent(NS)}`;
      const progress = { bytes: 0 };
      const response = get(server.address, path, signed(path, good.length), progress);
      fetcher.step(0);
      await until("the first (bad) bytes sent", () => progress.bytes >= 50_000);
      fetcher.step(1);
      fetcher.step(2);
      const res = await response;
      assert.equal(res.complete && res.body.length === good.length, false, "no complete body");
    } finally {
      await server.close();
    }
  });
});
