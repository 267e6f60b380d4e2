// `ferry mirror` read endpoints side by side with the Distribution registry it fronts: the OCI
// distribution spec's status codes for the same requests, and one upstream HEAD (access check)
// however many cold clients ask for a blob at once.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, MediaType, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { removeDir, tempDir } from "./cli.ts";
import { errorCodes, get, mirrors, startMirror } from "./mirror-process.ts";

const ACCEPT = [MediaType.ociManifest, MediaType.dockerManifest].join(", ");
const ZERO = `sha256:${"0".repeat(64)}`;

/** One read request, what the spec's endpoint table answers, and where Distribution 2.8 differs. */
interface Case {
  path: string;
  spec: number;
  /** The error code the mirror's JSON body carries (the spec's code for the endpoint). */
  code?: string;
  /** Distribution's own answer where it departs from the spec. */
  distribution?: number;
  getOnly?: boolean;
}

/** Lines of a Distribution access log: `"METHOD PATH HTTP/1.1" STATUS`. */
async function accessLog(registry: RunningRegistry, method: string, path: string): Promise<number> {
  const text = await readFile(registry.logFile, "utf8");
  return text.split("\n").filter((l) => l.includes(`"${method} ${path} HTTP/1.1" 200`)).length;
}

describe("ferry mirror read endpoints, side by side with Distribution", () => {
  let work: string;
  let registry: RunningRegistry;
  let small: BuiltImage;
  let counted: BuiltImage;

  before(async () => {
    work = await tempDir("mirror-conformance");
    registry = await startRegistry();
    [small, counted] = await Promise.all([
      pushImage(registry.host, "lib/small", "v1", {
        layers: [[{ path: "etc/small", content: "small\n" }]],
      }),
      pushImage(registry.host, "lib/counted", "v1", {
        layers: [[{ path: "data/c.bin", size: 2_000_000 }]],
        level: 0,
      }),
    ]);
  });

  after(async () => {
    await Promise.all(mirrors.map((m) => m.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  test("the spec's status codes on /v2/, manifests, blobs and tags/list, with and without ?ns=", async () => {
    const m = await startMirror(join(work, "store-codes"), ["--upstream", registry.url]);
    const cases: Case[] = [
      { path: "/v2/", spec: 200 },
      { path: "/v2/lib/small/manifests/v1", spec: 200 },
      { path: `/v2/lib/small/manifests/${small.manifestDigest}`, spec: 200 },
      { path: "/v2/lib/small/manifests/nope", spec: 404, code: "MANIFEST_UNKNOWN" },
      // The conformance suite's "invalid manifest name": neither a tag nor a digest.
      {
        path: "/v2/lib/small/manifests/.INVALID_MANIFEST_NAME",
        spec: 404,
        code: "MANIFEST_UNKNOWN",
      },
      { path: `/v2/lib/small/manifests/${ZERO}`, spec: 404, code: "MANIFEST_UNKNOWN" },
      {
        path: "/v2/lib/small/manifests/sha256:abc",
        spec: 404,
        code: "MANIFEST_UNKNOWN",
        distribution: 500,
      },
      { path: "/v2/lib/none/manifests/v1", spec: 404, code: "MANIFEST_UNKNOWN" },
      { path: "/v2/Lib/Small/manifests/v1", spec: 404, code: "NAME_UNKNOWN" },
      { path: `/v2/lib/small/blobs/${small.configDigest}`, spec: 200 },
      { path: `/v2/lib/small/blobs/${ZERO}`, spec: 404, code: "BLOB_UNKNOWN" },
      { path: "/v2/lib/small/blobs/notadigest", spec: 404, code: "BLOB_UNKNOWN" },
      {
        path: "/v2/lib/small/blobs/sha256:abc",
        spec: 404,
        code: "BLOB_UNKNOWN",
        distribution: 400,
      },
      { path: `/v2/lib/none/blobs/${small.configDigest}`, spec: 404, code: "BLOB_UNKNOWN" },
      { path: "/v2/lib/small/tags/list", spec: 200, getOnly: true },
      { path: "/v2/lib/none/tags/list", spec: 404, code: "NAME_UNKNOWN", getOnly: true },
    ];
    const ns = `ns=${encodeURIComponent(registry.host)}`;
    for (const c of cases) {
      for (const method of c.getOnly ? ["GET"] : ["GET", "HEAD"]) {
        const headers = { accept: ACCEPT };
        const upstream = await get(`${registry.url}${c.path}`, { method, headers });
        const sep = c.path.includes("?") ? "&" : "?";
        for (const path of [c.path, `${c.path}${sep}${ns}`]) {
          const mirrored = await get(`${m.url}${path}`, { method, headers });
          assert.equal(mirrored.status, c.spec, `${method} ${path}: ${mirrored.body.toString()}`);
          if (c.code !== undefined && method === "GET")
            assert.deepEqual(errorCodes(mirrored.body), [c.code], `${method} ${path}`);
        }
        assert.equal(
          upstream.status,
          c.distribution ?? c.spec,
          `Distribution: ${method} ${c.path}`,
        );
      }
    }
  });

  test("100 concurrent cold clients of one blob: one upstream HEAD and one upstream GET", async () => {
    const m = await startMirror(join(work, "store-head"), ["--upstream", registry.url]);
    const layer = counted.layers[0];
    assert.ok(layer);
    const path = `/v2/lib/counted/blobs/${layer.digest}`;
    // No manifest first: each client's access to the blob is checked upstream (a HEAD).
    const got = await Promise.all(Array.from({ length: 100 }, () => get(`${m.url}${path}`)));
    for (const g of got) {
      assert.equal(g.status, 200);
      assert.ok(g.complete, g.error);
      assert.equal(`sha256:${createHash("sha256").update(g.body).digest("hex")}`, layer.digest);
    }
    await registry.settled();
    assert.equal(await accessLog(registry, "HEAD", path), 1, "one upstream HEAD");
    assert.equal(await accessLog(registry, "GET", path), 1, "one upstream GET");
  });
});
