// `ferry pull` end to end against a real Distribution registry, run as a user runs it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  type BuiltImage,
  type FileSpec,
  type ImageSpec,
  MediaType,
  pushImage,
  pushIndex,
} from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryResult,
  ferry,
  lines,
  ndjson,
  REF_NAME,
  readStoreIndex,
  removeDir,
  shortId,
  tempDir,
  verifiedBlobs,
} from "./cli.ts";

const execFileAsync = promisify(execFile);

const SOURCE_DIGEST = "dev.ferry.source-digest";

const baseLayer: FileSpec[] = [
  { path: "bin", type: "dir" },
  { path: "bin/sh", type: "symlink", linkname: "busybox" },
  { path: "bin/busybox", size: 30_000, seed: "shared-base" },
];
const appLayer = (name: string): FileSpec[] => [
  { path: "app", type: "dir" },
  { path: `app/${name}.bin`, size: 20_000, seed: name },
  { path: "etc/hostname", content: `${name}\n` },
];
const twoLayers = (name: string): ImageSpec["layers"] => [
  [{ path: `etc/${name}-release`, content: `${name} 1.0\n` }],
  appLayer(name),
];

/** This host's architecture as the index names it, and the other one the index offers. */
const hostArch = process.arch === "arm64" ? "arm64" : "amd64";
const otherArch = hostArch === "arm64" ? "amd64" : "arm64";

function blobsOf(image: BuiltImage): string[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

/** Docker's plain pull output: header, one line per layer (any order), digest, status, reference. */
function assertPlainPull(
  r: FerryResult,
  expected: {
    header: string;
    layers: Array<[string, "Pull complete" | "Already exists"]>;
    digest: string;
    status: "Downloaded newer image for" | "Image is up to date for";
    reference: string;
  },
): void {
  assertExit(r, 0);
  const out = lines(r.stdout);
  const n = expected.layers.length;
  assert.equal(out.length, n + 4, describeRun(r));
  assert.equal(out[0], expected.header);
  assert.deepEqual(
    out.slice(1, n + 1).sort(),
    expected.layers.map(([digest, what]) => `${shortId(digest)}: ${what}`).sort(),
  );
  assert.deepEqual(out.slice(n + 1), [
    `Digest: ${expected.digest}`,
    `Status: ${expected.status} ${expected.reference}`,
    expected.reference,
  ]);
  assert.match(out[1] ?? "", /^[0-9a-f]{12}: /);
}

describe("ferry pull against a real registry", () => {
  let registry: RunningRegistry;
  let work: string;
  let small: BuiltImage;
  let shareOne: BuiltImage;
  let shareTwo: BuiltImage;
  let zstd: BuiltImage;
  let plain: BuiltImage;
  let docker: BuiltImage;
  let multi: { indexDigest: string; images: BuiltImage[] };
  const ref = (path: string) => `${registry.host}/${path}`;
  let storeCount = 0;
  const newStore = () => join(work, `store-${++storeCount}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("pull");
    const host = registry.host;
    [small, shareOne, shareTwo, zstd, plain, docker, multi] = await Promise.all([
      pushImage(host, "ferry/small", "v1", { layers: twoLayers("small") }),
      pushImage(host, "share/one", "v1", { layers: [baseLayer, appLayer("one")] }),
      pushImage(host, "share/two", "v1", { layers: [baseLayer, appLayer("two")] }),
      pushImage(host, "fmt/zstd", "v1", { layers: twoLayers("zstd"), compression: "zstd" }),
      pushImage(host, "fmt/plain", "v1", { layers: twoLayers("plain"), compression: "none" }),
      pushImage(host, "fmt/docker", "v1", { layers: twoLayers("docker"), mediaTypes: "docker" }),
      pushIndex(host, "multi/app", "v1", [
        { layers: twoLayers("amd64"), platform: { os: "linux", architecture: "amd64" } },
        {
          layers: twoLayers("arm64"),
          platform: { os: "linux", architecture: "arm64", variant: "v8" },
        },
      ]),
    ]);
  });

  after(async () => {
    await registry?.stop();
    await removeDir(work);
  });

  test("pulls a gzip image by tag into a valid OCI layout; a repeat pull downloads nothing", async () => {
    const store = newStore();
    const name = ref("ferry/small:v1");
    const first = await ferry(["pull", "--store", store, name]);
    assertPlainPull(first, {
      header: "v1: Pulling from ferry/small",
      layers: small.layers.map((l) => [l.digest, "Pull complete"]),
      digest: small.manifestDigest,
      status: "Downloaded newer image for",
      reference: name,
    });

    // The store is an OCI image layout holding exactly this image, every blob verified.
    assert.deepEqual(JSON.parse(await readFile(join(store, "oci-layout"), "utf8")), {
      imageLayoutVersion: "1.0.0",
    });
    assert.deepEqual(await verifiedBlobs(store), blobsOf(small).sort());
    const index = await readStoreIndex(store);
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.manifests.length, 1);
    const entry = index.manifests[0];
    assert.equal(entry?.digest, small.manifestDigest);
    assert.equal(entry?.mediaType, MediaType.ociManifest);
    assert.equal(entry?.size, small.manifest.length);
    assert.equal(entry?.annotations?.[REF_NAME], name);
    assert.deepEqual(
      await readFile(join(store, "blobs", "sha256", small.manifestDigest.slice(7))),
      small.manifest,
    );

    // Other OCI tools read the store: skopeo copies the image out by its recorded name.
    const out = join(work, "skopeo-out");
    await execFileAsync("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      `oci:${store}:${name}`,
      `dir:${out}`,
    ]);
    assert.deepEqual(await readFile(join(out, "manifest.json")), small.manifest);
    const copied = (await readdir(out)).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort();
    assert.deepEqual(
      copied,
      [small.configDigest, ...small.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort(),
    );

    const getsBefore = (await registry.blobGets()).filter((g) => g.name === "ferry/small");
    assert.deepEqual(
      getsBefore.map((g) => [g.digest, g.status]).sort(),
      [small.configDigest, ...small.layers.map((l) => l.digest)].map((d) => [d, 200]).sort(),
      "the first pull fetches each blob once",
    );

    const again = await ferry(["pull", "--store", store, name]);
    assertPlainPull(again, {
      header: "v1: Pulling from ferry/small",
      layers: small.layers.map((l) => [l.digest, "Already exists"]),
      digest: small.manifestDigest,
      status: "Image is up to date for",
      reference: name,
    });
    const getsAfter = (await registry.blobGets()).filter((g) => g.name === "ferry/small");
    assert.deepEqual(getsAfter, getsBefore, "a repeat pull fetches no blob");
    assert.equal((await entriesFor(store, name)).length, 1);

    // Start-up is most of a repeat pull: it loads neither Node's HTTP client (a plain-HTTP
    // registry is asked over a bare socket) nor worker threads nor node:crypto (the answer
    // equals the stored manifest, so it is not hashed again).
    const preload = join(work, "module-list.cjs");
    const list = join(work, "modules.txt");
    await writeFile(
      preload,
      `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join("\\n")));\n`,
    );
    // The bundle users run (npm ci builds it), not the TypeScript sources, whose ES imports
    // of built-ins load them whole.
    const bundle = join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
    const script = `const { main } = await import(${JSON.stringify(bundle)});
      process.exitCode = await main(${JSON.stringify(["pull", "-q", "--store", store, name])});`;
    const third = await execFileAsync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, NODE_OPTIONS: `--require ${preload}` },
    }).catch((err: unknown) => {
      throw new Error(`the bundle's repeat pull failed (is dist/cli built? npm run build)`, {
        cause: err,
      });
    });
    assert.equal(third.stdout, `${name}\n`);
    const loaded = (await readFile(list, "utf8")).split("\n");
    assert.ok(loaded.includes("NativeModule net"), "the module list is complete");
    for (const heavy of [
      "_http_client",
      "_http_agent",
      "worker_threads",
      "crypto",
      "internal/blocklist",
    ]) {
      assert.ok(!loaded.includes(`NativeModule ${heavy}`), `a repeat pull loaded ${heavy}`);
    }
  });

  test("a store whose index.json is not JSON: a clear error (exit 6), not a crash", async () => {
    const store = newStore();
    const name = ref("ferry/small:v1");
    assertExit(await ferry(["pull", "-q", "--store", store, name]), 0);
    await writeFile(join(store, "index.json"), "{bad");
    const r = await ferry(["pull", "--store", store, name]);
    assertExit(r, 6);
    assert.match(r.stderr, /index\.json is not valid JSON/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  test("--json prints NDJSON events ending with a done summary", async () => {
    const store = newStore();
    const name = ref("ferry/small:v1");
    const r = await ferry(["pull", "--json", "--store", store, name]);
    assertExit(r, 0);
    const events = ndjson(r.stdout);
    assert.equal(events[0]?.event, "resolved");
    assert.equal(events[0]?.digest, small.manifestDigest);
    const completed = events
      .filter((e) => e.event === "blob" && e.status === "complete")
      .map((e) => e.digest)
      .sort();
    assert.deepEqual(completed, [small.configDigest, ...small.layers.map((l) => l.digest)].sort());
    const done = events.at(-1);
    assert.equal(events.filter((e) => e.event === "done").length, 1);
    assert.equal(done?.event, "done");
    assert.equal(typeof done?.seconds, "number");
    assert.ok((done?.seconds as number) >= 0);
    assert.deepEqual(
      {
        reference: done?.reference,
        digest: done?.digest,
        bytesDownloaded: done?.bytesDownloaded,
        bytesFromRegistry: done?.bytesFromRegistry,
        bytesFromPeers: done?.bytesFromPeers,
        blobsDownloaded: done?.blobsDownloaded,
        blobsSkipped: done?.blobsSkipped,
      },
      {
        reference: name,
        digest: small.manifestDigest,
        bytesDownloaded: small.totalSize,
        bytesFromRegistry: small.totalSize,
        bytesFromPeers: 0,
        blobsDownloaded: 1 + small.layers.length,
        blobsSkipped: 0,
      },
    );
    assert.equal(r.stderr, "");

    const again = await ferry(["pull", "--json", "--store", store, name]);
    assertExit(again, 0);
    const last = ndjson(again.stdout).at(-1);
    assert.deepEqual(
      {
        event: last?.event,
        status: last?.status,
        bytesDownloaded: last?.bytesDownloaded,
        blobsDownloaded: last?.blobsDownloaded,
        blobsSkipped: last?.blobsSkipped,
      },
      {
        event: "done",
        status: "up-to-date",
        bytesDownloaded: 0,
        blobsDownloaded: 0,
        blobsSkipped: 1 + small.layers.length,
      },
    );
  });

  test("a base layer shared by two images is downloaded once", async () => {
    const base = shareOne.layers[0]?.digest ?? "";
    assert.equal(shareTwo.layers[0]?.digest, base, "the fixture shares the base layer");
    const store = newStore();
    const one = ref("share/one:v1");
    const two = ref("share/two:v1");
    assertPlainPull(await ferry(["pull", "--store", store, one]), {
      header: "v1: Pulling from share/one",
      layers: shareOne.layers.map((l) => [l.digest, "Pull complete"]),
      digest: shareOne.manifestDigest,
      status: "Downloaded newer image for",
      reference: one,
    });
    const second = await ferry(["pull", "--store", store, two]);
    assertPlainPull(second, {
      header: "v1: Pulling from share/two",
      layers: [
        [base, "Already exists"],
        [shareTwo.layers[1]?.digest ?? "", "Pull complete"],
      ],
      digest: shareTwo.manifestDigest,
      status: "Downloaded newer image for",
      reference: two,
    });
    assert.deepEqual(
      (await registry.blobGets()).filter((g) => g.digest === base).map((g) => g.name),
      ["share/one"],
      "the base layer is fetched once, for the first image",
    );
    assert.deepEqual(
      await verifiedBlobs(store),
      [...new Set([...blobsOf(shareOne), ...blobsOf(shareTwo)])].sort(),
    );

    // blobsSkipped counts the shared layer.
    const jsonStore = newStore();
    assertExit(await ferry(["pull", "-q", "--store", jsonStore, one]), 0);
    const r = await ferry(["pull", "--json", "--store", jsonStore, two]);
    assertExit(r, 0);
    const done = ndjson(r.stdout).at(-1);
    const baseSize = shareTwo.layers[0]?.size ?? 0;
    assert.deepEqual(
      [done?.blobsDownloaded, done?.blobsSkipped, done?.bytesDownloaded],
      [2, 1, shareTwo.totalSize - baseSize],
    );
  });

  test("zstd, uncompressed and Docker schema-2 images keep their media types and digests", async () => {
    const cases: Array<[string, BuiltImage, string, string]> = [
      ["fmt/zstd", zstd, MediaType.ociManifest, MediaType.ociLayerZstd],
      ["fmt/plain", plain, MediaType.ociManifest, MediaType.ociLayer],
      ["fmt/docker", docker, MediaType.dockerManifest, MediaType.dockerLayerGzip],
    ];
    await Promise.all(
      cases.map(async ([path, image, manifestType, layerType]) => {
        const store = newStore();
        const name = ref(`${path}:v1`);
        const r = await ferry(["pull", "--store", store, name]);
        assertPlainPull(r, {
          header: `v1: Pulling from ${path}`,
          layers: image.layers.map((l) => [l.digest, "Pull complete"]),
          digest: image.manifestDigest,
          status: "Downloaded newer image for",
          reference: name,
        });
        assert.deepEqual(await verifiedBlobs(store), blobsOf(image).sort(), path);
        const [entry, ...rest] = await entriesFor(store, name);
        assert.equal(rest.length, 0);
        assert.equal(entry?.mediaType, manifestType, path);
        assert.equal(entry?.digest, image.manifestDigest, path);
        const inspected = await ferry(["inspect", "--store", store, name]);
        assertExit(inspected, 0);
        const info = JSON.parse(inspected.stdout) as {
          mediaType: string;
          layers: Array<{ digest: string; size: number; mediaType: string }>;
        };
        assert.equal(info.mediaType, manifestType, path);
        assert.deepEqual(
          info.layers,
          image.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: layerType })),
          path,
        );
        assert.deepEqual(
          await readFile(join(store, "blobs", "sha256", image.manifestDigest.slice(7))),
          image.manifest,
          `${path}: the manifest is stored byte for byte`,
        );
      }),
    );
  });

  test("a 2-platform index: this host's platform by default, --platform picks another", async () => {
    const store = newStore();
    const name = ref("multi/app:v1");
    const byArch = (arch: string) => {
      const i = arch === "amd64" ? 0 : 1;
      const image = multi.images[i];
      assert.ok(image);
      return image;
    };
    const host = byArch(hostArch);
    const other = byArch(otherArch);

    const r = await ferry(["pull", "--store", store, name]);
    assertPlainPull(r, {
      header: "v1: Pulling from multi/app",
      layers: host.layers.map((l) => [l.digest, "Pull complete"]),
      digest: multi.indexDigest,
      status: "Downloaded newer image for",
      reference: name,
    });
    let entries = await entriesFor(store, name);
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.digest, host.manifestDigest);
    assert.equal(entries[0]?.platform?.architecture, hostArch);
    assert.equal(entries[0]?.annotations?.[SOURCE_DIGEST], multi.indexDigest);
    const blobs = await verifiedBlobs(store);
    for (const d of blobsOf(host)) assert.ok(blobs.includes(d), `${d} of ${hostArch} stored`);
    for (const l of other.layers)
      assert.ok(!blobs.includes(l.digest), `no ${otherArch} layer stored`);

    const picked = await ferry([
      "pull",
      "--platform",
      `linux/${otherArch}`,
      "--store",
      store,
      name,
    ]);
    assertPlainPull(picked, {
      header: "v1: Pulling from multi/app",
      layers: other.layers.map((l) => [l.digest, "Pull complete"]),
      digest: multi.indexDigest,
      status: "Downloaded newer image for",
      reference: name,
    });
    entries = await entriesFor(store, name);
    assert.equal(entries.length, 1, "the name now points at the other platform's manifest");
    assert.equal(entries[0]?.digest, other.manifestDigest);
    assert.equal(entries[0]?.platform?.architecture, otherArch);

    // Again: the index is asked for, the platform's manifest is not (the store has it).
    const childGets = async () =>
      (await readFile(registry.logFile, "utf8"))
        .split("\n")
        .filter((line) => line.includes(`"GET /v2/multi/app/manifests/${other.manifestDigest} `))
        .length;
    await registry.settled();
    const childGetsBefore = await childGets();
    const again = await ferry(["pull", "--platform", `linux/${otherArch}`, "--store", store, name]);
    assertPlainPull(again, {
      header: "v1: Pulling from multi/app",
      layers: other.layers.map((l) => [l.digest, "Already exists"]),
      digest: multi.indexDigest,
      status: "Image is up to date for",
      reference: name,
    });
    await registry.settled();
    assert.ok(childGetsBefore > 0, "the first pull of that platform fetched its manifest");
    assert.equal(await childGets(), childGetsBefore);

    const before = await readFile(join(store, "index.json"), "utf8");
    const missing = await ferry(["pull", "--platform", "linux/s390x", "--store", store, name]);
    assertExit(missing, 3);
    assert.match(missing.stderr, /platform linux\/s390x/);
    assert.match(missing.stderr, /available: linux\/amd64, linux\/arm64\/v8\b/);
    assert.equal(await readFile(join(store, "index.json"), "utf8"), before);
  });

  test("pulls by digest and by tag+digest, recording the name as given", async () => {
    const store = newStore();
    const byDigest = ref(`ferry/small@${small.manifestDigest}`);
    assertPlainPull(await ferry(["pull", "--store", store, byDigest]), {
      header: `${small.manifestDigest}: Pulling from ferry/small`,
      layers: small.layers.map((l) => [l.digest, "Pull complete"]),
      digest: small.manifestDigest,
      status: "Downloaded newer image for",
      reference: byDigest,
    });
    const both = ref(`ferry/small:v1@${small.manifestDigest}`);
    assertPlainPull(await ferry(["pull", "--store", store, both]), {
      header: `${small.manifestDigest}: Pulling from ferry/small`,
      layers: small.layers.map((l) => [l.digest, "Already exists"]),
      digest: small.manifestDigest,
      status: "Downloaded newer image for",
      reference: both,
    });
    const index = await readStoreIndex(store);
    assert.deepEqual(
      index.manifests.map((m) => [m.annotations?.[REF_NAME], m.digest]).sort(),
      [
        [byDigest, small.manifestDigest],
        [both, small.manifestDigest],
      ].sort(),
    );
    assert.deepEqual(await verifiedBlobs(store), blobsOf(small).sort());

    // A digest the repository does not have is not found.
    const absent = ref(`ferry/small@sha256:${"0".repeat(64)}`);
    assertExit(await ferry(["pull", "--store", store, absent]), 3);
  });

  test("images, images --json, inspect and rm", async () => {
    const store = newStore();
    const smallName = ref("ferry/small:v1");
    const zstdName = ref("fmt/zstd:v1");
    assertExit(await ferry(["pull", "-q", "--store", store, smallName, zstdName]), 0);

    const table = await ferry(["images", "--store", store]);
    assertExit(table, 0);
    const rows = lines(table.stdout).map((l) => l.split(/ {3,}/));
    assert.deepEqual(rows[0], ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED"]);
    assert.equal(rows.length, 3);
    const expectRows = [
      [ref("ferry/small"), small],
      [ref("fmt/zstd"), zstd],
    ] as const;
    for (const [i, [repo, image]] of expectRows.entries()) {
      const row = rows[i + 1] ?? [];
      assert.deepEqual(row.slice(0, 3), [repo, "v1", image.manifestDigest.slice(0, 19)]);
      assert.match(row[3] ?? "", /^\d+(\.\d+)?[kMG]?B$/);
      assert.match(row[4] ?? "", / ago$/, `pulled time in ${row.join(" | ")}`);
    }

    const listed = await ferry(["images", "--json", "--store", store]);
    assertExit(listed, 0);
    const list = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      list.map((i) => [i.reference, i.digest, i.manifestDigest, i.size]),
      [
        // SIZE: the manifest, config and layers in the store
        [
          smallName,
          small.manifestDigest,
          small.manifestDigest,
          small.totalSize + small.manifest.length,
        ],
        [zstdName, zstd.manifestDigest, zstd.manifestDigest, zstd.totalSize + zstd.manifest.length],
      ],
    );
    for (const i of list) assert.ok(!Number.isNaN(Date.parse(String(i.pulledAt))));

    const inspected = await ferry(["inspect", "--store", store, smallName]);
    assertExit(inspected, 0);
    const info = JSON.parse(inspected.stdout) as {
      reference: string;
      digest: string;
      size: number;
      layers: Array<{ digest: string; size: number; mediaType: string }>;
      config: { os: string; architecture: string; rootfs: { diff_ids: string[] } };
    };
    assert.equal(info.reference, smallName);
    assert.equal(info.digest, small.manifestDigest);
    assert.equal(info.size, small.totalSize + small.manifest.length);
    assert.deepEqual(
      info.layers,
      small.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    );
    assert.deepEqual(
      info.config.rootfs.diff_ids,
      small.layers.map((l) => l.diffId),
    );
    // A digest prefix names the same image.
    const byPrefix = await ferry(["inspect", "--store", store, shortId(small.manifestDigest)]);
    assertExit(byPrefix, 0);
    assert.equal((JSON.parse(byPrefix.stdout) as { reference: string }).reference, smallName);

    const removed = await ferry(["rm", "--store", store, smallName]);
    assertExit(removed, 0);
    assert.equal(removed.stdout, `Untagged: ${smallName}\n`);
    assert.deepEqual(await entriesFor(store, smallName), []);
    assert.equal((await entriesFor(store, zstdName)).length, 1);
    const afterRm = JSON.parse(
      (await ferry(["images", "--json", "--store", store])).stdout,
    ) as Array<{
      reference: string;
    }>;
    assert.deepEqual(
      afterRm.map((i) => i.reference),
      [zstdName],
    );
    // Blobs stay until garbage collection.
    assert.ok((await verifiedBlobs(store)).includes(small.layers[0]?.digest ?? ""));

    const again = await ferry(["rm", "--store", store, smallName]);
    assertExit(again, 3);
    assert.match(
      again.stderr,
      new RegExp(`no image ${smallName.replaceAll(".", "\\.")} in the store`),
    );
    const unknown = await ferry(["rm", "--store", store, "nothing/here:v1"]);
    assertExit(unknown, 3);
    assert.match(unknown.stderr, /no image docker\.io\/nothing\/here:v1 in the store/);
    assertExit(await ferry(["inspect", "--store", store, smallName]), 3);
  });
});
