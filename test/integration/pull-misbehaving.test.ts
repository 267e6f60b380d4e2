// Registries that misbehave (redirect loops, redirects off http(s), impossible lengths, bodies
// longer or shorter than their descriptor): a clear message, a hint, the documented exit code,
// nothing stored. A real registry behind a proxy that answers some requests itself.
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type ProxyAnswer, type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  ferry,
  ingestFiles,
  removeDir,
  tempDir,
  verifiedBlobs,
} from "./cli.ts";

describe("ferry pull from a misbehaving registry", () => {
  let registry: RunningRegistry;
  let work: string;
  let image: BuiltImage;
  let layer: { digest: string; size: number };
  const proxies: RunningProxy[] = [];
  let stores = 0;

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("pull-misbehaving");
    image = await pushImage(registry.host, "bad/img", "v1", {
      layers: [[{ path: "data", size: 30_000 }]],
      compression: "none",
    });
    const first = image.layers[0];
    assert.ok(first !== undefined);
    layer = first;
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  /**
   * Pulls through a proxy answering `kind` GETs with `answer`; checks the exit code, that
   * stderr is the message (exactly, after "ferry: REF: ") and a hint, and that nothing of
   * the image was stored. Returns the proxy's host.
   */
  async function fails(
    kind: "blob" | "manifest",
    answer: (path: string) => ProxyAnswer,
    exit: number,
    message: (host: string) => string,
  ): Promise<void> {
    const wanted = kind === "blob" ? `/blobs/${layer.digest}` : "/manifests/";
    const proxy = await startProxy({
      target: registry.host,
      answer: (r) => (r.method === "GET" && r.path.includes(wanted) ? answer(r.path) : undefined),
    });
    proxies.push(proxy);
    const store = join(work, `store-${++stores}`);
    const name = `${proxy.host}/bad/img:v1`;
    const r = await ferry(["pull", "--store", store, name]);
    assert.equal(r.code, exit, describeRun(r));
    const [line, hint, ...rest] = r.stderr.split("\n");
    assert.equal(line, `ferry: ${name}: ${message(proxy.host)}`, describeRun(r));
    assert.match(hint ?? "", /^ {2}hint: \S/, describeRun(r));
    assert.deepEqual(rest, [""], describeRun(r));
    const blobs = await verifiedBlobs(store).catch(() => [] as string[]);
    assert.equal(blobs.includes(layer.digest), false);
    assert.deepEqual(await entriesFor(store, name).catch(() => []), []);
    // An ingest file may stay for a later resume, but none of the bad bytes are in it.
    for (const file of await ingestFiles(store)) {
      if (file.endsWith(".partial"))
        assert.equal((await stat(join(store, "ferry", "ingest", file))).size, 0, file);
    }
  }

  const url = (host: string, path: string) => `http://${host}${path}`;

  test("a blob redirect loop: exit 1 naming the host and the loop", async () => {
    await fails(
      "blob",
      (path) => ({ status: 302, headers: { location: path } }),
      1,
      (host) =>
        `${host} redirected ${url(host, `/v2/bad/img/blobs/${layer.digest}`)} more than 5 times (a redirect loop)`,
    );
  });

  test("a manifest redirect loop: exit 1 likewise", async () => {
    await fails(
      "manifest",
      (path) => ({ status: 307, headers: { location: path } }),
      1,
      (host) =>
        `${host} redirected ${url(host, "/v2/bad/img/manifests/v1")} more than 5 times (a redirect loop)`,
    );
  });

  test("a redirect to file:///etc/passwd: refused, exit 1, the scheme named", async () => {
    await fails(
      "blob",
      () => ({ status: 302, headers: { location: "file:///etc/passwd" } }),
      1,
      (host) =>
        `${host} redirected ${url(host, `/v2/bad/img/blobs/${layer.digest}`)} to a file: URL; only http and https redirects are followed`,
    );
  });

  test("an impossible Content-Length: exit 1, an invalid response from that host", async () => {
    await fails(
      "blob",
      () => ({ status: 200, headers: { "content-length": "99999999999999999999" }, body: "x" }),
      1,
      (host) =>
        `${host} sent an invalid HTTP response: invalid Content-Length "99999999999999999999"`,
    );
  });

  test("a Content-Length other than the descriptor's: refused before the body, exit 6", async () => {
    const announced = layer.size + 1000;
    await fails(
      "blob",
      () => ({ status: 200, headers: { "content-length": String(announced) }, body: "x" }),
      6,
      (host) =>
        `blob ${layer.digest} is ${layer.size} bytes by its descriptor, but the registry announced ${announced}, from ${host}/bad/img`,
    );
  });

  test("a body longer than the descriptor (no Content-Length): exit 6 naming the descriptor's size only", async () => {
    await fails(
      "blob",
      () => ({
        status: 200,
        headers: { "transfer-encoding": "chunked" },
        body: Buffer.alloc(layer.size + 70_000),
      }),
      6,
      (host) =>
        `content of ${layer.digest} is longer than the ${layer.size} bytes its descriptor gives, from ${host}/bad/img`,
    );
  });

  test("a body shorter than the descriptor (no Content-Length): exit 6 naming both sizes", async () => {
    await fails(
      "blob",
      () => ({
        status: 200,
        headers: { "transfer-encoding": "chunked" },
        body: Buffer.alloc(layer.size - 10),
      }),
      6,
      (host) =>
        `content of ${layer.digest} ended after ${layer.size - 10} of the ${layer.size} bytes its descriptor gives, from ${host}/bad/img`,
    );
  });
});
