// `ferry lazy` against a real registry, with eStargz layers made by the reference converter
// (`ctr-remote image convert --estargz`) on a real containerd.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { extractTocJson, FOOTER_SIZE, parseFooter, parseToc } from "../../src/lazy/index.ts";
import { pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { describeRun, ferry, isolatedEnv, removeDir, tempDir } from "./cli.ts";

const execFileAsync = promisify(execFile);
const SMALL = "etc/motd";
const SMALL_TEXT = "lazy pulling reads only what it needs\n";
const BIG_BYTES = 6 * 1024 * 1024;

let registry: RunningRegistry;
let containerd: RunningContainerd;
let home: string;
let plainRef: string;
let lazyRef: string;

async function ctrRemote(args: string[]): Promise<void> {
  await execFileAsync("ctr-remote", ["-a", containerd.socket, ...args], { maxBuffer: 16 << 20 });
}

async function http(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${registry.url}${path}`, init);
}

/** Pushes a blob with the monolithic upload; returns its digest. */
async function putBlob(name: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const start = await http(`/v2/${name}/blobs/uploads/`, { method: "POST" });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get("location") ?? "", registry.url);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

describe("ferry lazy", { timeout: 90_000 }, () => {
  before(async () => {
    [registry, containerd, home] = await Promise.all([
      startRegistry(),
      startContainerd(),
      tempDir("lazy"),
    ]);
    plainRef = `${registry.host}/lazy/app:plain`;
    lazyRef = `${registry.host}/lazy/app:esgz`;
    await pushImage(registry.host, "lazy/app", "plain", {
      layers: [
        [
          { path: "etc", type: "dir" },
          { path: "opt", type: "dir" },
          { path: "opt/big.bin", size: BIG_BYTES },
          { path: SMALL, content: SMALL_TEXT },
          { path: "etc/link", type: "symlink", linkname: "motd" },
        ],
        [{ path: "etc/second", content: "upper layer\n" }],
      ],
    });
    await ctrRemote(["images", "pull", "--plain-http", plainRef]);
    await ctrRemote(["images", "convert", "--estargz", "--oci", plainRef, lazyRef]);
    await ctrRemote(["images", "push", "--plain-http", lazyRef]);
  });

  after(async () => {
    await Promise.all([registry?.stop(), containerd?.stop(), removeDir(home)]);
  });

  const run = (args: string[]) => ferry(["lazy", ...args], isolatedEnv(home));

  test("ls lists the merged files of an eStargz image", async () => {
    const r = await run(["ls", "-R", lazyRef]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^-rw-r--r-- +0\/0 +6291456 \/opt\/big\.bin$/m);
    assert.match(r.stdout, /^l\S+ .* \/etc\/link -> motd$/m);
    assert.match(r.stdout, /\/etc\/second$/m);
    assert.doesNotMatch(r.stdout, /landmark|stargz\.index/);
    const top = await run(["ls", lazyRef, "/etc"]);
    assert.equal(top.code, 0, describeRun(top));
    const paths = top.stdout
      .trim()
      .split("\n")
      .map((l) => / (\/\S+)/.exec(l)?.[1]);
    assert.deepEqual(paths, ["/etc/link", "/etc/motd", "/etc/second"]);
  });

  test("cat of a small file fetches far fewer bytes than its layer", async () => {
    const r = await run(["cat", "--stats", lazyRef, SMALL]);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, SMALL_TEXT);
    const m = /^fetched (\d+) of (\d+) layer bytes/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.ok(Number(m[1]) * 20 < Number(m[2]), `fetched ${m[1]} of ${m[2]}`);
    assert.match(r.stderr, /eStargz/);
    const viaLink = await run(["cat", lazyRef, "/etc/link"]);
    assert.equal(viaLink.stdout, SMALL_TEXT, describeRun(viaLink));
  });

  test("a corrupted chunk is refused", async () => {
    const res = await http("/v2/lazy/app/manifests/esgz", {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const manifest = (await res.json()) as {
      layers: Array<{ digest: string; size: number; annotations?: Record<string, string> }>;
    };
    const layer = manifest.layers[0];
    assert.ok(layer);
    const blob = Buffer.from(
      await (await http(`/v2/lazy/app/blobs/${layer.digest}`)).arrayBuffer(),
    );
    const footer = parseFooter(blob.subarray(blob.length - FOOTER_SIZE));
    assert.ok(footer);
    const json = extractTocJson(
      blob.subarray(footer.tocOffset, blob.length - footer.size),
      layer.digest,
    );
    const toc = parseToc(json, {
      layer: layer.digest,
      tocOffset: footer.tocOffset,
      blobSize: blob.length,
    });
    const chunk = toc.entries.find((e) => e.path === SMALL)?.chunks[0];
    assert.ok(chunk);
    const bad = Buffer.from(blob);
    const at = chunk.offset + Math.floor((chunk.end - chunk.offset) / 2);
    bad[at] = (bad[at] ?? 0) ^ 0xff;
    const digest = await putBlob("lazy/app", bad);
    const corrupted = { ...manifest, layers: [{ ...layer, digest }, ...manifest.layers.slice(1)] };
    const put = await http("/v2/lazy/app/manifests/corrupt", {
      method: "PUT",
      body: JSON.stringify(corrupted),
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    });
    assert.equal(put.status, 201, await put.text());
    const r = await run(["cat", `${registry.host}/lazy/app:corrupt`, SMALL]);
    assert.equal(r.code, 6, describeRun(r));
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /chunk of etc\/motd/);
    // The other files of the layer are still read and verified.
    const other = await run(["ls", `${registry.host}/lazy/app:corrupt`, "/etc"]);
    assert.equal(other.code, 0, describeRun(other));
  });

  test("a plain gzip image still works, and says it is not lazy", async () => {
    const r = await run(["cat", "--stats", plainRef, SMALL]);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, SMALL_TEXT);
    assert.match(r.stderr, /not lazy/);
    const ls = await run(["ls", plainRef, "/opt"]);
    assert.match(ls.stdout, /6291456 \/opt\/big\.bin/, describeRun(ls));
  });
});
