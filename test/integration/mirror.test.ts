// `ferry mirror` as a process in front of a real Distribution registry: skopeo and plain HTTP
// clients through it, coalescing, stale tags, corruption, ranges, errors and graceful shutdown.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { access, readFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, MediaType, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { IGNORED_RANGES } from "../fixtures/ranges.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { describeRun, ferry, removeDir, tempDir, until } from "./cli.ts";
import { errorCodes, type Got, get, mirrors, startMirror } from "./mirror-process.ts";

const execFileAsync = promisify(execFile);
const MB = 1_000_000;
const ACCEPT = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
].join(", ");

function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** `name{labels} value` lines of a Prometheus text page: the sum over series whose labels include `match`. */
function metric(text: string, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

function digestsOf(image: BuiltImage): string[] {
  return [image.configDigest, ...image.layers.map((l) => l.digest)];
}

async function skopeo(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync("skopeo", ["--insecure-policy", ...args], {
      maxBuffer: 64 * MB,
    });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

describe("ferry mirror in front of a Distribution registry", () => {
  let upstream: RunningRegistry;
  let work: string;
  let small: BuiltImage;
  let medium: BuiltImage;
  let big: BuiltImage;
  let bad: BuiltImage;
  let slow: BuiltImage;
  const proxies: RunningProxy[] = [];
  let stores = 0;
  const newStore = () => join(work, `store-${++stores}`);

  before(async () => {
    work = await tempDir("mirror");
    upstream = await startRegistry();
    const h = upstream.host;
    [small, medium, big, bad, slow] = await Promise.all([
      pushImage(h, "lib/small", "v1", {
        layers: [
          [{ path: "etc/small", content: "small\n" }],
          [{ path: "data/a.bin", size: 600_000 }],
          [{ path: "data/b.bin", size: 150_000 }],
        ],
      }),
      pushImage(h, "lib/medium", "v1", {
        layers: [[{ path: "data/m1.bin", size: 3 * MB }], [{ path: "data/m2.bin", size: MB }]],
        level: 0,
      }),
      pushImage(h, "lib/big", "v1", { layers: [[{ path: "big.bin", size: 24 * MB }]], level: 0 }),
      pushImage(h, "lib/bad", "v1", { layers: [[{ path: "bad.bin", size: 2 * MB }]], level: 0 }),
      pushImage(h, "lib/slow", "v1", { layers: [[{ path: "slow.bin", size: 3 * MB }]], level: 0 }),
    ]);
  });

  after(async () => {
    await Promise.all(mirrors.map((m) => m.stop()));
    await Promise.all(proxies.map((p) => p.stop()));
    await upstream?.stop();
    await removeDir(work);
  });

  test("--listen 127.0.0.1:0 binds a free port and logs its URL", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    assert.match(m.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(m.url).port, "0");
    const base = await get(`${m.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(base.headers["docker-distribution-api-version"], "registry/2.0");
    const r = await m.stop();
    assert.equal(r.code, 0, describeRun(r));
  });

  test("skopeo copy through the mirror, cold then warm: upstream digests, each blob fetched once", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    for (const round of ["cold", "warm"]) {
      const dest = join(work, `skopeo-medium-${round}`);
      await skopeo([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        `docker://${m.host}/lib/medium:v1`,
        `oci:${dest}:v1`,
      ]);
      const index = JSON.parse(await readFile(join(dest, "index.json"), "utf8")) as {
        manifests: Array<{ digest: string }>;
      };
      assert.equal(index.manifests[0]?.digest, medium.manifestDigest, `${round}: manifest digest`);
      for (const d of digestsOf(medium)) {
        const bytes = await readFile(join(dest, "blobs", "sha256", d.slice(7)));
        assert.equal(sha256(bytes), d, `${round}: blob ${d}`);
      }
      const { stdout } = await skopeo([
        "inspect",
        "--tls-verify=false",
        `docker://${m.host}/lib/medium:v1`,
      ]);
      assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, medium.manifestDigest);
    }
    const gets = (await upstream.blobGets()).filter((g) => g.name === "lib/medium");
    assert.deepEqual(
      gets.map((g) => [g.digest, g.status]).sort(),
      digestsOf(medium)
        .map((d) => [d, 200])
        .sort(),
      "each blob fetched from the upstream exactly once over both pulls",
    );
    const metrics = (await get(`${m.url}/metrics`)).body.toString("utf8");
    assert.ok(metric(metrics, "ferry_mirror_cache_hits_total", { kind: "blob" }) >= 3, metrics);
  });

  test("100 concurrent cold clients: correct bytes for all, one upstream GET per blob", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    const blobs = digestsOf(small);
    const client = async () => {
      const man = await get(`${m.url}/v2/lib/small/manifests/v1`, { headers: { accept: ACCEPT } });
      assert.equal(man.status, 200);
      assert.equal(sha256(man.body), small.manifestDigest);
      const layers = await Promise.all(blobs.map((d) => get(`${m.url}/v2/lib/small/blobs/${d}`)));
      for (const [i, got] of layers.entries()) {
        assert.equal(got.status, 200);
        assert.ok(got.complete, got.error);
        assert.equal(sha256(got.body), blobs[i]);
      }
    };
    await Promise.all(Array.from({ length: 100 }, client));
    const gets = (await upstream.blobGets()).filter((g) => g.name === "lib/small");
    assert.deepEqual(
      gets.map((g) => [g.digest, g.status]).sort(),
      digestsOf(small)
        .map((d) => [d, 200])
        .sort(),
      "exactly one upstream GET per blob for 100 clients",
    );
    const metrics = (await get(`${m.url}/metrics`)).body.toString("utf8");
    assert.equal(
      metric(metrics, "ferry_mirror_upstream_fetches_total", { kind: "blob" }),
      blobs.length,
      metrics,
    );
    assert.equal(
      metric(metrics, "ferry_mirror_upstream_fetches_total", { kind: "manifest" }),
      1,
      metrics,
    );
    assert.ok(metric(metrics, "ferry_mirror_coalesced_waits_total") > 0, metrics);
    assert.equal(
      metric(metrics, "ferry_mirror_requests_total", { status: "200" }),
      100 * (1 + blobs.length),
      metrics,
    );
  });

  test("/metrics counts the bytes of blobs streamed to clients on a miss, as on a hit", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    const layer = medium.layers[1];
    assert.ok(layer);
    const man = await get(`${m.url}/v2/lib/medium/manifests/v1`, { headers: { accept: ACCEPT } });
    assert.equal(man.status, 200);
    const url = `${m.url}/v2/lib/medium/blobs/${layer.digest}`;
    const cold = await get(url);
    assert.ok(cold.complete && cold.body.length === layer.size);
    const afterMiss = (await get(`${m.url}/metrics`)).body.toString("utf8");
    const warm = await get(url);
    assert.ok(warm.complete && warm.body.length === layer.size);
    const afterHit = (await get(`${m.url}/metrics`)).body.toString("utf8");
    assert.equal(
      metric(afterHit, "ferry_mirror_bytes_served_total", { kind: "blob" }),
      2 * layer.size,
      `two complete responses of ${layer.size} bytes; after the miss alone: ${metric(afterMiss, "ferry_mirror_bytes_served_total", { kind: "blob" })}`,
    );
  });

  test("upstream gone after `ferry warm`: tags served stale (x-ferry-stale), digests as ever", async () => {
    const gone = await startRegistry();
    const image = await pushImage(gone.host, "lib/warm", "v1", {
      layers: [[{ path: "w.bin", size: 300_000 }], [{ path: "etc/w", content: "w\n" }]],
    });
    const m = await startMirror(newStore(), ["--upstream", gone.url, "--tag-ttl", "1s"]);
    try {
      const warm = await ferry(["warm", `${gone.host}/lib/warm:v1`, "--mirror", m.url]);
      assert.equal(warm.code, 0, describeRun(warm));
      assert.match(
        warm.stdout,
        new RegExp(`WARMED ${gone.host}/lib/warm:v1 ${image.manifestDigest}`),
      );
      const warmedGets = (await gone.blobGets()).map((g) => g.digest).sort();
      assert.deepEqual(warmedGets, digestsOf(image).sort(), "warm fetched every blob once");
    } finally {
      await gone.stop();
    }
    // Until the 1 s tag TTL has passed the cached tag is fresh; after it the mirror asks the
    // (dead) upstream first and, failing that, answers stale. How long that takes is the retry
    // policy's (registry/retry.test.ts), not a wall-clock bound here: `until` fails the test if
    // no answer is ever stale.
    const byTag = await until(`the tag served stale once past its TTL`, async () => {
      const r = await get(`${m.url}/v2/lib/warm/manifests/v1`, { headers: { accept: ACCEPT } });
      return r.headers["x-ferry-stale"] === "true" ? r : undefined;
    });
    assert.equal(byTag.status, 200, byTag.body.toString());
    assert.equal(byTag.headers["docker-content-digest"], image.manifestDigest);
    assert.equal(sha256(byTag.body), image.manifestDigest);
    const byDigest = await get(`${m.url}/v2/lib/warm/manifests/${image.manifestDigest}`, {
      headers: { accept: ACCEPT },
    });
    assert.equal(byDigest.status, 200);
    assert.equal(byDigest.headers["x-ferry-stale"], undefined, "a digest is never stale");
    assert.equal(sha256(byDigest.body), image.manifestDigest);

    for (const ref of [`${m.host}/lib/warm:v1`, `${m.host}/lib/warm@${image.manifestDigest}`]) {
      const dest = join(work, `stale-${ref.includes("@") ? "digest" : "tag"}`);
      await skopeo([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${dest}:x`,
      ]);
      for (const d of digestsOf(image)) {
        assert.equal(sha256(await readFile(join(dest, "blobs", "sha256", d.slice(7)))), d);
      }
    }
    const metrics = (await get(`${m.url}/metrics`)).body.toString("utf8");
    assert.ok(metric(metrics, "ferry_mirror_stale_serves_total") >= 1, metrics);
    assert.match(m.log(), /upstream failed; serving the last known digest/);
  });

  test("a corrupting proxy upstream: no client gets the whole bad blob, the store never holds it", async () => {
    const corrupt = await startProxy({ target: upstream.host, corruptBlobs: true });
    proxies.push(corrupt);
    const store = newStore();
    const m = await startMirror(store, ["--upstream", corrupt.url]);
    const man = await get(`${m.url}/v2/lib/bad/manifests/v1`, { headers: { accept: ACCEPT } });
    assert.equal(man.status, 200, "manifests pass the proxy untouched");
    const layer = bad.layers[0];
    assert.ok(layer);
    // Two clients at once (one download, one waiter), then one more after the failure.
    const first = await Promise.all([
      get(`${m.url}/v2/lib/bad/blobs/${layer.digest}`),
      get(`${m.url}/v2/lib/bad/blobs/${layer.digest}`),
    ]);
    const later = await get(`${m.url}/v2/lib/bad/blobs/${layer.digest}`);
    for (const got of [...first, later]) {
      const complete =
        got.status === 200 &&
        got.complete &&
        got.body.length === Number(got.headers["content-length"]);
      assert.ok(
        !complete,
        `a complete body (${got.body.length} bytes, status ${got.status}) was delivered`,
      );
      if (got.status === 200) {
        assert.ok(got.body.length < layer.size, `cut short: ${got.body.length} of ${layer.size}`);
      } else {
        assert.ok(got.status >= 500, `status ${got.status}`);
      }
    }
    assert.equal(await exists(join(store, "blobs", "sha256", layer.digest.slice(7))), false);
    assert.ok(
      corrupt.requests.some((r) => r.path.includes(layer.digest)),
      "the blob was asked for through the proxy",
    );
  });

  test("Range: 206 with exactly the bytes, 416 past the end, a lazy reader over a cold big layer", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    const layer = big.layers[0];
    assert.ok(layer);
    const man = await get(`${m.url}/v2/lib/big/manifests/v1`, { headers: { accept: ACCEPT } });
    assert.equal(man.status, 200);
    // A lazy reader (a stargz/soci-like client) asks for a few ranges of a layer not yet cached.
    const ranges: Array<[number, number]> = [
      [0, 511],
      [layer.size - 4096, layer.size - 1],
      [7 * MB, 7 * MB + 65_535],
      [Math.floor(layer.size / 2), Math.floor(layer.size / 2) + 999_999],
    ];
    const viaMirror = await Promise.all(
      ranges.map(([a, b]) =>
        get(`${m.url}/v2/lib/big/blobs/${layer.digest}`, { headers: { range: `bytes=${a}-${b}` } }),
      ),
    );
    const blobGets = (await upstream.blobGets()).filter((g) => g.digest === layer.digest);
    assert.equal(blobGets.length, 1, "the mirror fetched the layer once for all ranges");
    for (const [i, [a, b]] of ranges.entries()) {
      const got = viaMirror[i];
      assert.ok(got);
      assert.equal(got.status, 206);
      assert.equal(got.headers["content-range"], `bytes ${a}-${b}/${layer.size}`);
      const direct = await get(`${upstream.url}/v2/lib/big/blobs/${layer.digest}`, {
        headers: { range: `bytes=${a}-${b}` },
      });
      assert.equal(direct.status, 206);
      assert.ok(got.body.equals(direct.body), `bytes ${a}-${b} match the upstream's`);
    }

    // curl, on the now cached blob
    const out = join(work, "range.bin");
    const url = `${m.url}/v2/lib/big/blobs/${layer.digest}`;
    const { stdout: code } = await execFileAsync("curl", [
      "-s",
      "-r",
      "0-99",
      "-o",
      out,
      "-w",
      "%{http_code}",
      url,
    ]);
    assert.equal(code, "206");
    const first100 = await readFile(out);
    const direct = await get(`${upstream.url}/v2/lib/big/blobs/${layer.digest}`, {
      headers: { range: "bytes=0-99" },
    });
    assert.equal(first100.length, 100);
    assert.ok(first100.equals(direct.body));

    const past = await get(url, { headers: { range: `bytes=${layer.size}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers["content-range"], `bytes */${layer.size}`);
    const { stdout: curl416 } = await execFileAsync("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-H",
      `Range: bytes=${layer.size + 10}-`,
      url,
    ]);
    assert.equal(curl416, "416");
    const suffix = await get(url, { headers: { range: "bytes=-10" } });
    assert.equal(suffix.status, 206);
    assert.equal(
      suffix.headers["content-range"],
      `bytes ${layer.size - 10}-${layer.size - 1}/${layer.size}`,
    );
  });

  test("a malformed Range: 200 with the whole blob, cold or stored, as the peer listener answers", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    const layer = small.layers[2];
    assert.ok(layer);
    const man = await get(`${m.url}/v2/lib/small/manifests/v1`, { headers: { accept: ACCEPT } });
    assert.equal(man.status, 200);
    const url = `${m.url}/v2/lib/small/blobs/${layer.digest}`;
    const whole = await get(`${upstream.url}/v2/lib/small/blobs/${layer.digest}`);
    assert.equal(whole.status, 200);
    // The first asks for the blob cold (fetched whole, then answered), the rest find it stored.
    for (const range of IGNORED_RANGES) {
      const got = await get(url, { headers: { range } });
      assert.equal(got.status, 200, range);
      assert.equal(got.headers["content-range"], undefined, range);
      assert.ok(got.body.equals(whole.body), range);
    }
  });

  test("push refused with 405 UNSUPPORTED; an unknown tag is 404 MANIFEST_UNKNOWN (registry error JSON)", async () => {
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    const post = await get(`${m.url}/v2/lib/small/blobs/uploads/`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.match(String(post.headers["content-type"]), /^application\/json/);
    assert.deepEqual(errorCodes(post.body), ["UNSUPPORTED"]);
    const put = await get(`${m.url}/v2/lib/small/manifests/v9`, {
      method: "PUT",
      headers: { "content-type": MediaType.ociManifest },
      body: small.manifest.toString("utf8"),
    });
    assert.equal(put.status, 405);
    assert.deepEqual(errorCodes(put.body), ["UNSUPPORTED"]);
    const del = await get(`${m.url}/v2/lib/small/manifests/${small.manifestDigest}`, {
      method: "DELETE",
    });
    assert.equal(del.status, 405);
    assert.deepEqual(errorCodes(del.body), ["UNSUPPORTED"]);
    // A real client pushing: skopeo gives up on the refused upload.
    await assert.rejects(
      skopeo([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        `docker://${upstream.host}/lib/small:v1`,
        `docker://${m.host}/lib/pushed:v1`,
      ]),
      /405|UNSUPPORTED|unsupported/i,
    );
    const gets = (await upstream.blobGets()).filter((g) => g.name === "lib/pushed");
    assert.deepEqual(gets, []);

    const unknown = await get(`${m.url}/v2/lib/small/manifests/nope`, {
      headers: { accept: ACCEPT },
    });
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.headers["content-type"]), /^application\/json/);
    assert.deepEqual(errorCodes(unknown.body), ["MANIFEST_UNKNOWN"]);
    // As Distribution itself answers: a manifest of an unknown repository is MANIFEST_UNKNOWN,
    // its tag list NAME_UNKNOWN.
    const noRepo = await get(`${m.url}/v2/lib/none/manifests/v1`, { headers: { accept: ACCEPT } });
    assert.equal(noRepo.status, 404);
    assert.deepEqual(errorCodes(noRepo.body), ["MANIFEST_UNKNOWN"]);
    const noTags = await get(`${m.url}/v2/lib/none/tags/list`);
    assert.equal(noTags.status, 404);
    assert.deepEqual(errorCodes(noTags.body), ["NAME_UNKNOWN"]);
  });

  /** Pushes `tags` of one tiny image to `registry` as `name` (the first by skopeo, the rest by manifest PUT). */
  async function tagMany(registry: RunningRegistry, name: string, tags: string[]): Promise<void> {
    const [first, ...rest] = tags;
    assert.ok(first);
    const image = await pushImage(registry.host, name, first, {
      layers: [[{ path: "etc/t", content: `${name}\n` }]],
    });
    for (const tag of rest) {
      const put = await get(`${registry.url}/v2/${name}/manifests/${tag}`, {
        method: "PUT",
        headers: { "content-type": image.manifestMediaType },
        body: image.manifest.toString("utf8"),
      });
      assert.equal(put.status, 201, put.body.toString());
    }
  }

  /** Follows Link headers from `start` as a client would; returns each page's tags. */
  async function listPages(base: string, start: string): Promise<string[][]> {
    const pages: string[][] = [];
    let next: string | undefined = start;
    while (next !== undefined) {
      assert.ok(pages.length < 10, "too many pages");
      const page = await get(new URL(next, base).href);
      assert.equal(page.status, 200, `${next}: ${page.body.toString()}`);
      pages.push((JSON.parse(page.body.toString("utf8")) as { tags: string[] }).tags);
      const link = page.headers.link;
      if (typeof link !== "string") break;
      next = /^<([^>]+)>;\s*rel="next"$/.exec(link)?.[1];
      assert.ok(next, `Link header: ${link}`);
    }
    return pages;
  }

  const TAGS = ["t0", "t1", "t2", "t3", "t4", "t5", "t6"];

  test("tags/list with pagination: n, last, Link to the next page", async () => {
    await tagMany(upstream, "lib/tagged", TAGS);
    const m = await startMirror(newStore(), ["--upstream", upstream.url]);
    const all = await get(`${m.url}/v2/lib/tagged/tags/list`);
    assert.equal(all.status, 200);
    assert.match(String(all.headers["content-type"]), /^application\/json/);
    assert.deepEqual(JSON.parse(all.body.toString("utf8")), { name: "lib/tagged", tags: TAGS });
    const first = await get(`${m.url}/v2/lib/tagged/tags/list?n=3`);
    assert.equal(first.headers.link, '</v2/lib/tagged/tags/list?n=3&last=t2>; rel="next"');
    assert.deepEqual(await listPages(m.url, "/v2/lib/tagged/tags/list?n=3"), [
      ["t0", "t1", "t2"],
      ["t3", "t4", "t5"],
      ["t6"],
    ]);
    const last = await get(`${m.url}/v2/lib/tagged/tags/list?n=2&last=t4`);
    assert.deepEqual(JSON.parse(last.body.toString("utf8")).tags, ["t5", "t6"]);
    assert.equal(last.headers.link, undefined, "no Link on the last page");
  });

  test("tags/list pages of a ?ns= registry: the Link keeps ?ns=", async () => {
    // A second registry, reached only with ?ns=; the default upstream has no such repository.
    const other = await startRegistry();
    try {
      await tagMany(other, "lib/elsewhere", TAGS);
      const m = await startMirror(newStore(), [
        "--upstream",
        upstream.url,
        "--allow-ns",
        other.host,
      ]);
      const ns = `ns=${encodeURIComponent(other.host)}`;
      const first = await get(`${m.url}/v2/lib/elsewhere/tags/list?n=3&${ns}`);
      assert.deepEqual(JSON.parse(first.body.toString("utf8")).tags, ["t0", "t1", "t2"]);
      const link = String(first.headers.link);
      assert.match(
        link,
        /[?&]ns=127\.0\.0\.1(%3A|:)\d+/,
        `the next page must go to the same registry: Link ${link}`,
      );
      assert.deepEqual(await listPages(m.url, `/v2/lib/elsewhere/tags/list?n=3&${ns}`), [
        ["t0", "t1", "t2"],
        ["t3", "t4", "t5"],
        ["t6"],
      ]);
    } finally {
      await other.stop();
    }
  });

  test("SIGTERM during a slow blob response: the response completes, then exit 0", async () => {
    const throttled = await startProxy({ target: upstream.host, bytesPerSecond: 1.5 * MB });
    proxies.push(throttled);
    const m = await startMirror(newStore(), ["--upstream", throttled.url]);
    const man = await get(`${m.url}/v2/lib/slow/manifests/v1`, { headers: { accept: ACCEPT } });
    assert.equal(man.status, 200);
    const layer = slow.layers[0];
    assert.ok(layer);
    let received = 0;
    let onBytes: (() => void) | undefined;
    const response = new Promise<Got>((resolve, reject) => {
      const req = request(`${m.url}/v2/lib/slow/blobs/${layer.digest}`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          chunks.push(c);
          received += c.length;
          onBytes?.();
        });
        const finish = (complete: boolean, error?: string) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            complete,
            error,
          });
        res.on("end", () => finish(true));
        res.on("error", (err) => finish(false, err.message));
      });
      req.on("error", reject);
      req.end();
    });
    await new Promise<void>((resolve) => {
      onBytes = () => {
        if (received > 0) resolve();
      };
    });
    const exited = new Promise<number>((resolve) => {
      m.proc.child.once("exit", () => resolve(performance.now()));
    });
    const receivedAtSignal = received;
    const result = m.stop();
    const got = await response;
    const doneAt = performance.now();
    assert.ok(receivedAtSignal < layer.size, `SIGTERM was sent mid-body (${receivedAtSignal})`);
    assert.equal(got.status, 200);
    assert.ok(got.complete, got.error);
    assert.equal(got.body.length, layer.size);
    assert.equal(sha256(got.body), layer.digest);
    const r = await result;
    assert.equal(r.code, 0, describeRun(r));
    assert.ok((await exited) >= doneAt - 50, "the process exited after the response completed");
    assert.match(r.stderr, /shutting down/);
  });
});
