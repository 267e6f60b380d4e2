// The mirror's request handling in process: a real store in a temp dir, a real Distribution
// registry upstream (test/fixtures/registry.ts), real HTTP on 127.0.0.1.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fetchBlob } from "../../test/fixtures/blob-http.ts";
import { type BuiltImage, pushImage } from "../../test/fixtures/images.ts";
import { IGNORED_RANGES } from "../../test/fixtures/ranges.ts";
import { until } from "../../test/fixtures/until.ts";
import { type RunningRegistry, startRegistry } from "../../test/fixtures/registry.ts";
import { anonymous } from "../config/index.ts";
import { Metrics } from "../observe/index.ts";
import { Puller } from "../pull/index.ts";
import { RegistryClient } from "../registry/index.ts";
import { Store } from "../store/index.ts";
import { Mirror } from "./mirror.ts";
import { ServedRegistries } from "./served.ts";
import { type RunningMirror, startMirrorServer } from "./server.ts";

/** One quick attempt: a registry that is down fails the request at once. */
const FAIL_FAST = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 2_000 };

describe("mirror request handling (real store, real registry)", () => {
  let upstream: RunningRegistry;
  let dir: string;
  let image: BuiltImage;
  const clients: RegistryClient[] = [];
  const servers: RunningMirror[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-mirror-unit-"));
    upstream = await startRegistry();
    image = await pushImage(upstream.host, "team/app", "v1", {
      layers: [[{ path: "a.bin", size: 200_000 }]],
      level: 0,
    });
    await pushImage(upstream.host, "team/app", "v2", { layers: [[{ path: "b", content: "b\n" }]] });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close(0)));
    await Promise.all(clients.map((c) => c.close()));
    await upstream?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function mirror(name: string, tagTtlMs: number) {
    const store = await Store.open(join(dir, name));
    const registry = new RegistryClient({
      credentials: anonymous,
      settings: () => ({ mirrors: [], plainHttp: true }),
      retry: FAIL_FAST,
    });
    clients.push(registry);
    const m = new Mirror({
      store,
      puller: new Puller({ registry, store, hashWorkers: "never" }),
      registry,
      defaultNamespace: upstream.host,
      served: new ServedRegistries(upstream.host, []),
      tagTtlMs,
      metrics: new Metrics(),
      log: () => {},
    });
    const server = await startMirrorServer({
      host: "127.0.0.1",
      port: 0,
      mirror: m,
      log: () => {},
    });
    servers.push(server);
    return { m, url: server.url, store };
  }

  const manifest = (url: string, ref: string, method = "GET") =>
    fetchBlob(`${url}/v2/team/app/manifests/${ref}`, { method });

  it("a tag within its TTL is answered from the store; a TTL of 0 asks upstream each time", async () => {
    const cached = await mirror("ttl", 3_600_000);
    assert.equal((await manifest(cached.url, "v1")).status, 200);
    assert.equal((await manifest(cached.url, "v1")).status, 200);
    assert.deepEqual([cached.m.totals.misses, cached.m.totals.hits], [1, 1]);

    const uncached = await mirror("ttl0", 0);
    const first = await manifest(uncached.url, "v1");
    const second = await manifest(uncached.url, "v1");
    assert.equal(second.headers["docker-content-digest"], image.manifestDigest);
    assert.ok(second.body.equals(first.body));
    assert.deepEqual([uncached.m.totals.misses, uncached.m.totals.hits], [2, 0]);
  });

  it("upstream down: a known tag is served stale (Warning 110), its tag list from the store; an unknown tag is an error body", async () => {
    const { url } = await mirror("stale", 0);
    assert.equal((await manifest(url, "v1")).status, 200);
    await upstream.kill();
    try {
      const stale = await manifest(url, "v1");
      assert.equal(stale.status, 200);
      assert.equal(stale.headers["docker-content-digest"], image.manifestDigest);
      assert.match(String(stale.headers.warning), /^110 /);
      assert.equal(stale.headers["x-ferry-stale"], "true");
      const head = await manifest(url, "v1", "HEAD");
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);

      const tags = await fetchBlob(`${url}/v2/team/app/tags/list`);
      assert.equal(tags.status, 200);
      assert.deepEqual(JSON.parse(tags.body.toString()), { name: "team/app", tags: ["v1"] });

      const unknown = await manifest(url, "v2");
      assert.equal(unknown.status, 503);
      assert.equal(JSON.parse(unknown.body.toString()).errors[0].code, "UNAVAILABLE");
    } finally {
      await upstream.revive();
    }
  });

  it("tags/list pages the upstream's tags", async () => {
    const { url } = await mirror("tags", 0);
    const page = await fetchBlob(`${url}/v2/team/app/tags/list?n=1`);
    assert.deepEqual(JSON.parse(page.body.toString()), { name: "team/app", tags: ["v1"] });
    assert.equal(page.headers.link, '</v2/team/app/tags/list?n=1&last=v1>; rel="next"');
  });

  it("a blob: HEAD on a miss gives its size; a cold GET streams it whole; Range forms as serve/ answers them", async () => {
    const { url, store } = await mirror("blobs", 0);
    const layer = image.layers[0];
    assert.ok(layer);
    assert.equal((await manifest(url, "v1")).status, 200);
    const blobUrl = `${url}/v2/team/app/blobs/${layer.digest}`;
    const head = await fetchBlob(blobUrl, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], String(layer.size));
    const cold = await fetchBlob(blobUrl);
    assert.equal(cold.status, 200);
    assert.ok(cold.complete);
    assert.equal(cold.body.length, layer.size);
    assert.ok(await store.hasBlob(layer.digest));
    const part = await fetchBlob(blobUrl, { range: "bytes=100-" });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(cold.body.subarray(100)));
    for (const range of IGNORED_RANGES) {
      const whole = await fetchBlob(blobUrl, { range });
      assert.equal(whole.status, 200, range);
      assert.ok(whole.body.equals(cold.body), range);
    }
    const past = await fetchBlob(blobUrl, { range: `bytes=${layer.size}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers["content-range"], `bytes */${layer.size}`);
  });

  it("a blob not yet stored: a malformed Range streams it whole, one past the end is 416 without fetching it", async () => {
    const layer = image.layers[0];
    assert.ok(layer);
    const past = await mirror("cold-past", 0);
    assert.equal((await manifest(past.url, "v1")).status, 200);
    const refused = await fetchBlob(`${past.url}/v2/team/app/blobs/${layer.digest}`, {
      range: `bytes=${layer.size}-`,
    });
    assert.equal(refused.status, 416);
    assert.equal(refused.headers["content-range"], `bytes */${layer.size}`);
    assert.equal(await past.store.hasBlob(layer.digest), false, "nothing was fetched");

    const malformed = await mirror("cold-malformed", 0);
    const manifestBytes = (await manifest(malformed.url, "v1")).body.length;
    const whole = await fetchBlob(`${malformed.url}/v2/team/app/blobs/${layer.digest}`, {
      range: "bytes=5-3",
    });
    assert.equal(whole.status, 200);
    assert.ok(whole.complete);
    assert.equal(whole.body.length, layer.size);
    // Counted once the handler returns, which may be just after the client has the last byte.
    const served = () => malformed.m.totals.bytesServed - manifestBytes;
    await until("the blob's bytes counted", () => served() > 0);
    assert.equal(served(), layer.size);
  });

  it("a blob not named by any manifest of the repository is 404 BLOB_UNKNOWN", async () => {
    const { url } = await mirror("unknown-blob", 0);
    const got = await fetchBlob(`${url}/v2/team/app/blobs/sha256:${"0".repeat(64)}`);
    assert.equal(got.status, 404);
    assert.equal(JSON.parse(got.body.toString()).errors[0].code, "BLOB_UNKNOWN");
  });
});
