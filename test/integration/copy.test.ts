// `ferry copy` and `ferry push` end to end against real Distribution registries (plain and
// htpasswd): digests unchanged, skips, cross-repository mounts, chunked uploads, credentials.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, type FileSpec, pushImage, pushIndex } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  type FerryResult,
  ferry,
  ingestFiles,
  isolatedEnv,
  lines,
  ndjson,
  removeDir,
  shortId,
  tempDir,
} from "./cli.ts";

const execFileAsync = promisify(execFile);
const USER = { user: "pusher", password: "pw-pusher-K2m8" };
const CHUNK = 16 * 1024 * 1024;

const layer = (name: string, size = 20_000): FileSpec[] => [
  { path: `etc/${name}-release`, content: `${name}\n` },
  { path: `app/${name}.bin`, size, seed: name },
];

interface Access {
  method: string;
  path: string;
  status: number;
}

/** The registry's access log, parsed: one entry per request, in order. */
async function accessLog(registry: RunningRegistry): Promise<Access[]> {
  await registry.settled();
  const out: Access[] = [];
  for (const line of (await readFile(registry.logFile, "utf8")).split("\n")) {
    const m = /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line);
    if (m) out.push({ method: m[1] ?? "", path: m[2] ?? "", status: Number(m[3]) });
  }
  return out;
}

/** Requests that carry blob data into a repository: PATCH, or PUT to an upload session. */
const uploads = (log: Access[], repo: string) =>
  log.filter(
    (a) =>
      a.path.startsWith(`/v2/${repo}/blobs/uploads/`) &&
      (a.method === "PATCH" || a.method === "PUT"),
  );

/** sha256 of the manifest bytes skopeo reads at `ref` (a registry reference). */
async function remoteDigest(ref: string): Promise<string> {
  const { stdout } = await execFileAsync(
    "skopeo",
    ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`],
    { encoding: "buffer", maxBuffer: 4 * 1024 * 1024 },
  );
  return `sha256:${createHash("sha256").update(stdout).digest("hex")}`;
}

function manifestStatus(registry: RunningRegistry, repo: string, digest: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${registry.url}/v2/${repo}/manifests/${digest}`, { method: "HEAD" });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

function done(r: FerryResult): Record<string, unknown> {
  assertExit(r, 0);
  const last = ndjson(r.stdout).at(-1);
  assert.equal(last?.event, "done", describeRun(r));
  return last as Record<string, unknown>;
}

describe("ferry copy and push against real registries", () => {
  let source: RunningRegistry;
  let target: RunningRegistry;
  let locked: RunningRegistry;
  let work: string;
  let small: BuiltImage;
  let big: BuiltImage;
  let multi: { indexDigest: string; images: BuiltImage[] };
  let stores = 0;
  const newStore = () => join(work, `store-${++stores}`);

  before(async () => {
    work = await tempDir("copy");
    [source, target, locked] = await Promise.all([
      startRegistry(),
      startRegistry(),
      startRegistry({ htpasswd: USER }),
    ]);
    [small, big, multi] = await Promise.all([
      pushImage(source.host, "src/app", "v1", { layers: [layer("base"), layer("app")] }),
      // Uncompressed random bytes: a ~40 MB layer, three 16 MiB chunks.
      pushImage(source.host, "big/app", "v1", {
        layers: [[{ path: "data.bin", size: 40_000_000, seed: "big" }]],
        compression: "none",
      }),
      pushIndex(source.host, "multi/app", "v1", [
        { layers: [layer("amd64")], platform: { os: "linux", architecture: "amd64" } },
        { layers: [layer("arm64")], platform: { os: "linux", architecture: "arm64" } },
      ]),
    ]);
  });

  after(async () => {
    await Promise.all([source?.stop(), target?.stop(), locked?.stop()]);
    await removeDir(work);
  });

  test("registry → registry: same digest at the destination; a second copy uploads nothing", async () => {
    const store = newStore();
    const from = `${source.host}/src/app:v1`;
    const to = `${target.host}/copy/app:v1`;
    const first = await ferry(["copy", "--store", store, from, to]);
    assertExit(first, 0);
    const out = lines(first.stdout);
    assert.equal(out[0], `The push refers to repository [${target.host}/copy/app]`);
    assert.deepEqual(
      out.slice(1, -1).sort(),
      small.layers.map((l) => `${shortId(l.digest)}: Pushed`).sort(),
    );
    assert.equal(out.at(-1), `v1: digest: ${small.manifestDigest} size: ${small.manifest.length}`);
    assert.equal(await remoteDigest(to), small.manifestDigest);
    assert.deepEqual(await ingestFiles(store), [], "staged blobs are removed after upload");
    const uploadsBefore = uploads(await accessLog(target), "copy/app").length;
    assert.ok(uploadsBefore >= 3, "config and two layers were uploaded");

    const again = done(await ferry(["copy", "--json", "--store", store, from, to]));
    assert.equal(again.digest, small.manifestDigest);
    assert.equal(again.blobsUploaded, 0);
    assert.equal(again.blobsSkipped, 3);
    assert.equal(again.bytesUploaded, 0);
    assert.equal(again.bytesDownloaded, 0);
    assert.equal(uploads(await accessLog(target), "copy/app").length, uploadsBefore);
    const plain = await ferry(["copy", "--store", store, from, to]);
    assert.ok(
      lines(plain.stdout).includes(
        `${shortId(small.layers[0]?.digest ?? "")}: Layer already exists`,
      ),
      describeRun(plain),
    );
  });

  test("a copy to another repository of the same registry mounts every blob", async () => {
    const r = await ferry([
      "copy",
      "--json",
      "--store",
      newStore(),
      `${source.host}/src/app:v1`,
      `${source.host}/mounted/app:v1`,
    ]);
    const summary = done(r);
    assert.equal(summary.blobsMounted, 3);
    assert.equal(summary.blobsUploaded, 0);
    assert.equal(summary.bytesDownloaded, 0);
    const mounted = ndjson(r.stdout).filter((e) => e.event === "blob" && e.status === "mounted");
    assert.ok(mounted.every((e) => e.from === "src/app"));
    const log = await accessLog(source);
    const mounts = log.filter(
      (a) => a.method === "POST" && a.path.startsWith("/v2/mounted/app/blobs/uploads/?mount="),
    );
    assert.equal(mounts.length, 3);
    assert.ok(mounts.every((a) => a.status === 201 && a.path.includes("from=src%2Fapp")));
    assert.deepEqual(uploads(log, "mounted/app"), [], "no blob data was sent");
    assert.equal(await remoteDigest(`${source.host}/mounted/app:v1`), small.manifestDigest);
  });

  test("--all copies every platform and the index; without it one platform, its digest kept", async () => {
    const store = newStore();
    const all = done(
      await ferry([
        "copy",
        "--json",
        "--all",
        "--store",
        store,
        `${source.host}/multi/app:v1`,
        `${target.host}/multi/all:v1`,
      ]),
    );
    assert.equal(all.digest, multi.indexDigest);
    assert.equal(all.manifests, 3);
    assert.equal(await remoteDigest(`${target.host}/multi/all:v1`), multi.indexDigest);
    for (const image of multi.images)
      assert.equal(
        await remoteDigest(`${target.host}/multi/all@${image.manifestDigest}`),
        image.manifestDigest,
      );

    const [amd, arm] = multi.images as [BuiltImage, BuiltImage];
    const one = done(
      await ferry([
        "copy",
        "--json",
        "--platform",
        "linux/arm64",
        "--store",
        store,
        `${source.host}/multi/app:v1`,
        `${target.host}/multi/one:v1`,
      ]),
    );
    assert.equal(one.digest, arm.manifestDigest);
    assert.equal(one.manifests, 1);
    assert.equal(await remoteDigest(`${target.host}/multi/one:v1`), arm.manifestDigest);
    assert.equal(await manifestStatus(target, "multi/one", amd.manifestDigest), 404);
    assert.equal(await manifestStatus(target, "multi/one", multi.indexDigest), 404);
  });

  test("a 40 MB layer goes up in 16 MiB PATCH chunks", async () => {
    const store = newStore();
    const summary = done(
      await ferry([
        "copy",
        "--json",
        "--store",
        store,
        `${source.host}/big/app:v1`,
        `${target.host}/big/app:v1`,
      ]),
    );
    assert.equal(summary.bytesUploaded, big.totalSize);
    const layerSize = big.layers[0]?.size ?? 0;
    const patches = (await accessLog(target)).filter(
      (a) => a.method === "PATCH" && a.path.startsWith("/v2/big/app/blobs/uploads/"),
    );
    assert.equal(patches.length, Math.ceil(layerSize / CHUNK));
    assert.ok(patches.every((a) => a.status === 202));
    assert.equal(await remoteDigest(`${target.host}/big/app:v1`), big.manifestDigest);
    assert.deepEqual(await ingestFiles(store), []);
  });

  test("push from the store to an htpasswd registry; a pull from there gets the same digest", async () => {
    const home = join(work, "home");
    await mkdir(join(home, ".docker"), { recursive: true });
    const auth = Buffer.from(`${USER.user}:${USER.password}`).toString("base64");
    await writeFile(
      join(home, ".docker", "config.json"),
      JSON.stringify({ auths: { [locked.host]: { auth } } }),
    );
    const env = isolatedEnv(home);
    const store = newStore();
    const name = `${locked.host}/team/app:v1`;
    assertExit(await ferry(["pull", "--store", store, `${source.host}/src/app:v1`], env), 0);
    assertExit(
      await ferry(
        ["copy", "--store", store, `store:${source.host}/src/app:v1`, `store:${name}`],
        env,
      ),
      0,
    );
    const gets = (await source.blobGets()).length;

    const pushed = await ferry(["push", "--store", store, name], env);
    assertExit(pushed, 0);
    const out = lines(pushed.stdout);
    assert.equal(out[0], `The push refers to repository [${locked.host}/team/app]`);
    for (const l of small.layers)
      assert.ok(out.includes(`${shortId(l.digest)}: Pushed`), describeRun(pushed));
    assert.equal(out.at(-1), `v1: digest: ${small.manifestDigest} size: ${small.manifest.length}`);
    assert.equal((await source.blobGets()).length, gets, "a push reads blobs from the store");

    const pulled = done(await ferry(["pull", "--json", "--store", newStore(), name], env));
    assert.equal(pulled.digest, small.manifestDigest);
    const again = done(await ferry(["push", "--json", "--store", store, name], env));
    assert.equal(again.blobsSkipped, 3);
    assert.equal(again.blobsUploaded, 0);

    // Without credentials: exit 4 and what to do.
    const anonymous = isolatedEnv(join(work, "no-home"));
    const refused = await ferry(["push", "--store", store, name], anonymous);
    assertExit(refused, 4);
    assert.match(refused.stderr, new RegExp(`ferry login ${locked.host.replace(/\./g, "\\.")}`));
    const json = await ferry(["push", "--json", "--store", store, name], anonymous);
    assertExit(json, 4);
    const error = ndjson(json.stdout).at(-1);
    assert.equal(error?.event, "error");
    assert.equal(error?.code, "FERRY_AUTH_REQUIRED");
  });

  test("a stored multi-platform image: the stored platform is pushed; --all says what is missing", async () => {
    const store = newStore();
    assertExit(await ferry(["pull", "--store", store, `${source.host}/multi/app:v1`]), 0);
    const host = process.arch === "arm64" ? 1 : 0;
    const stored = multi.images[host] as BuiltImage;
    const one = done(
      await ferry([
        "copy",
        "--json",
        "--store",
        store,
        `store:${source.host}/multi/app:v1`,
        `${target.host}/stored/app:v1`,
      ]),
    );
    assert.equal(one.digest, stored.manifestDigest);
    const all = await ferry([
      "copy",
      "--all",
      "--store",
      store,
      `store:${source.host}/multi/app:v1`,
      `${target.host}/stored/app:v2`,
    ]);
    assertExit(all, 3);
    assert.match(all.stderr, /a pull keeps one platform/);
  });

  test("a missing stored image and an unknown source say so", async () => {
    const store = newStore();
    const missing = await ferry(["push", "--store", store, `${target.host}/nothing/here:v1`]);
    assertExit(missing, 3);
    assert.match(missing.stderr, /no image .* in the store/);
    const unknown = await ferry([
      "copy",
      "--store",
      store,
      `${source.host}/src/app:v9`,
      `${target.host}/x/y:v1`,
    ]);
    assertExit(unknown, 3);
    assert.match(unknown.stderr, /tag "v9" not found/);
  });
});
