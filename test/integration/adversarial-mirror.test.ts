// Hostile and unusual HTTP clients of `ferry mirror`: a HEAD must answer with the headers the
// same GET would, whether the blob is already stored or not (a cold miss); a client that
// leaves mid-body of a growing blob affects neither the download nor the other clients.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { ingestFiles, removeDir, tempDir, until, verifiedBlobs } from "./cli.ts";
import { get, mirrors, startMirror } from "./mirror-process.ts";

/** What a client learns from an answer's head: status and the headers that describe the body. */
function headOf(got: { status: number; headers: Record<string, unknown> }) {
  return {
    status: got.status,
    length: got.headers["content-length"],
    range: got.headers["content-range"],
  };
}

describe("ferry mirror and unusual clients", () => {
  let work: string;
  let registry: RunningRegistry;
  let image: BuiltImage;

  before(async () => {
    work = await tempDir("adversarial-mirror");
    registry = await startRegistry();
    image = await pushImage(registry.host, "lib/ranged", "v1", {
      layers: [[{ path: "data/r.bin", size: 300_000 }]],
      level: 0,
    });
  });

  const proxies: RunningProxy[] = [];

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await Promise.all(mirrors.map((m) => m.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  for (const range of ["bytes=0-9", "bytes=-5", "bytes=99999999-"]) {
    test(`HEAD with Range ${range} on a cold miss, then GET, then HEAD again`, async () => {
      const m = await startMirror(join(work, `store-${range.replace(/\W/g, "")}`), [
        "--upstream",
        registry.url,
      ]);
      const path = `/v2/lib/ranged/blobs/${image.layers[0]?.digest}`;
      const headers = { range };
      const coldHead = await get(`${m.url}${path}`, { method: "HEAD", headers });
      const got = await get(`${m.url}${path}`, { headers });
      const storedHead = await get(`${m.url}${path}`, { method: "HEAD", headers });
      assert.notEqual(got.status, 200, `GET ${range} answers the range (206) or refuses it (416)`);
      assert.deepEqual(
        headOf(storedHead),
        headOf(got),
        "HEAD after the GET (stored, or still not for a 416)",
      );
      assert.deepEqual(headOf(coldHead), headOf(got), "HEAD of a blob not yet stored");
    });
  }

  test("a client that leaves mid-body of a growing blob: the blob is still committed, verified, and another client gets all of it", async () => {
    // A slow upstream keeps the blob growing while both clients read.
    const proxy = await startProxy({ target: registry.host, bytesPerSecond: 1_000_000 });
    proxies.push(proxy);
    const store = join(work, "store-leaver");
    const m = await startMirror(store, ["--upstream", proxy.url]);
    const layer = image.layers[0] as { digest: string };
    const url = `${m.url}/v2/lib/ranged/blobs/${layer.digest}`;
    const left = new Promise<number>((resolve, reject) => {
      const req = request(url, { agent: false }, (res) => {
        res.once("data", (chunk: Buffer) => {
          req.destroy(); // gone after the first bytes, while the rest still arrives upstream
          resolve(chunk.length);
        });
      });
      req.on("error", () => undefined);
      req.on("close", () => reject(new Error("closed before any byte")));
      req.end();
    });
    const whole = get(url);
    assert.ok((await left) > 0);
    const got = await whole;
    assert.equal(got.status, 200);
    assert.ok(got.complete, `the staying client's body was cut: ${got.error}`);
    assert.equal(`sha256:${createHash("sha256").update(got.body).digest("hex")}`, layer.digest);
    const stored = await until("the blob committed", async () =>
      (await verifiedBlobs(store)).includes(layer.digest) ? true : undefined,
    );
    assert.ok(stored);
    assert.deepEqual(
      (await ingestFiles(store)).filter((f) => !f.endsWith(".lock")),
      [],
      "no partial left",
    );
  });

  test("a cold blob whose upstream has not answered yet: the client gets the status line at once", async () => {
    // The upstream answers HEADs but holds every blob GET without a response.
    const proxy = await startProxy({ target: registry.host, stall: { what: "blobs", at: "head" } });
    proxies.push(proxy);
    const m = await startMirror(join(work, "store-stalled"), ["--upstream", proxy.url]);
    const layer = image.layers[0] as { digest: string };
    let status = 0;
    const req = request(`${m.url}/v2/lib/ranged/blobs/${layer.digest}`, { agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
    });
    req.on("error", () => undefined);
    req.end();
    try {
      await until("the upstream asked for the blob", () =>
        proxy.requests.some((r) => r.method === "GET" && r.path.includes("/blobs/")),
      );
      await until("the mirror's status line", () => status !== 0, 10_000);
      assert.equal(status, 200);
    } finally {
      req.destroy();
    }
  });
});
