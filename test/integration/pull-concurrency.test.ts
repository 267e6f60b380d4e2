// `ferry pull` killed mid-download, and several ferry processes sharing one store.
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, type FileSpec, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryProcess,
  type FerryResult,
  ferry,
  ingestFiles,
  lines,
  ndjson,
  readStoreIndex,
  removeDir,
  shortId,
  startFerry,
  tempDir,
  until,
  verifiedBlobs,
} from "./cli.ts";

const MB = 1_000_000;

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

function blobsOf(image: BuiltImage): string[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}

/** Waits until the file holds at least `minBytes`; fails if the process ends first. */
function waitForGrowth(path: string, minBytes: number, proc: FerryProcess): Promise<number> {
  return until(`${path} to reach ${minBytes} bytes`, async () => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      assert.fail(
        `ferry ended before ${path} reached ${minBytes} bytes:\n${describeRun(await proc.result)}`,
      );
    }
    const size = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    return size >= minBytes ? size : undefined;
  });
}

const baseLayer: FileSpec[] = [{ path: "usr/lib/base.so", size: 4 * MB, seed: "base" }];

describe("ferry pull under kill -9 and concurrency", () => {
  let registry: RunningRegistry;
  let work: string;
  let big: BuiltImage;
  let same: BuiltImage;
  let left: BuiltImage;
  let right: BuiltImage;
  const proxies: RunningProxy[] = [];
  let storeCount = 0;
  const newStore = () => join(work, `store-${++storeCount}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("pull-conc");
    const host = registry.host;
    [big, same, left, right] = await Promise.all([
      // gzip level 0 stores random data as is: fast to build, ~40 MB on the wire.
      pushImage(host, "conc/big", "v1", {
        layers: [[{ path: "big.bin", size: 40 * MB }]],
        level: 0,
      }),
      pushImage(host, "conc/same", "v1", {
        layers: [
          [{ path: "etc/os-release", content: "same\n" }],
          [{ path: "data/large.bin", size: 8 * MB }],
          [{ path: "data/small.bin", size: 50_000 }],
        ],
        compression: "none",
      }),
      pushImage(host, "conc/left", "v1", {
        layers: [baseLayer, [{ path: "app/left", size: 100_000 }]],
        compression: "none",
      }),
      pushImage(host, "conc/right", "v1", {
        layers: [baseLayer, [{ path: "app/right", size: 100_000 }]],
        compression: "none",
      }),
    ]);
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  async function proxy(bytesPerSecond?: number): Promise<RunningProxy> {
    const p = await startProxy({
      target: registry.host,
      ...(bytesPerSecond === undefined ? {} : { bytesPerSecond }),
    });
    proxies.push(p);
    return p;
  }

  test("kill -9 mid-pull, then pull again: the download resumes with a Range request", async () => {
    const layer = big.layers[0];
    assert.ok(layer);
    const store = newStore();
    const slow = await proxy(8 * MB);
    const partial = join(store, "ferry", "ingest", `${layer.digest.slice(7)}.partial`);

    const first = startFerry(["pull", "--store", store, `${slow.host}/conc/big:v1`]);
    let seen: number;
    try {
      seen = await waitForGrowth(partial, 4 * MB, first);
    } finally {
      first.child.kill("SIGKILL");
    }
    const killed = await first.result;
    assert.equal(killed.signal, "SIGKILL", describeRun(killed));
    const kept = (await stat(partial)).size;
    assert.ok(kept >= seen && kept < layer.size, `partial holds ${kept} of ${layer.size} bytes`);
    assert.ok(!(await verifiedBlobs(store)).includes(layer.digest));

    const fast = await proxy();
    const name = `${fast.host}/conc/big:v1`;
    const second = await ferry(["pull", "--store", store, name]);
    assertExit(second, 0);
    assert.deepEqual(lines(second.stdout).slice(1, 2), [`${shortId(layer.digest)}: Pull complete`]);
    const layerGets = fast.requests.filter(
      (q) => q.method === "GET" && q.path.endsWith(`/blobs/${layer.digest}`),
    );
    assert.deepEqual(
      layerGets.map((q) => [q.range, q.status]),
      [[`bytes=${kept}-`, 206]],
      "one request, resuming from the bytes kept on disk",
    );
    assert.deepEqual(await verifiedBlobs(store), blobsOf(big).sort());
    assert.equal((await entriesFor(store, name)).length, 1);
    assert.deepEqual(
      (await ingestFiles(store)).filter((f) => f.endsWith(".partial")),
      [],
      "the partial became the blob",
    );
  });

  test("two processes pulling the same image into one store fetch each blob once", async () => {
    const large = same.layers[1];
    assert.ok(large);
    const store = newStore();
    const slow = await proxy(4 * MB);
    const name = `${slow.host}/conc/same:v1`;
    // The second process starts while the first is mid-download, holding the blobs' ingest locks.
    const first = startFerry(["pull", "--store", store, name]);
    await waitForGrowth(
      join(store, "ferry", "ingest", `${large.digest.slice(7)}.partial`),
      1,
      first,
    );
    const second = startFerry(["pull", "--json", "--store", store, name]);
    const [a, b] = await Promise.all([first.result, second.result]);
    assertExit(a, 0);
    assertExit(b, 0);
    assert.deepEqual(
      lines(a.stdout)
        .slice(1, 1 + same.layers.length)
        .sort(),
      same.layers.map((l) => `${shortId(l.digest)}: Pull complete`).sort(),
    );
    const events = ndjson(b.stdout);
    const largeStatuses = events
      .filter((e) => e.event === "blob" && e.digest === large.digest)
      .map((e) => e.status);
    assert.equal(
      largeStatuses[0],
      "waiting",
      `the second process found no blob yet: ${largeStatuses}`,
    );
    assert.equal(largeStatuses.at(-1), "exists", `and then found the first's: ${largeStatuses}`);
    assert.ok(!largeStatuses.includes("downloading"), `${largeStatuses}`);
    const done = events.at(-1);
    assert.deepEqual(
      [done?.event, done?.blobsDownloaded, done?.blobsSkipped, done?.bytesDownloaded],
      ["done", 0, 1 + same.layers.length, 0],
    );

    const gets = (await registry.blobGets()).filter((g) => g.name === "conc/same");
    assert.deepEqual(
      gets.map((g) => [g.digest, g.status]).sort(),
      [same.configDigest, ...same.layers.map((l) => l.digest)].map((d) => [d, 200]).sort(),
      "each blob is fetched from the registry exactly once",
    );
    assert.deepEqual(await verifiedBlobs(store), blobsOf(same).sort());
    const index = await readStoreIndex(store);
    assert.equal(index.manifests.length, 1);
    assert.equal((await entriesFor(store, name))[0]?.digest, same.manifestDigest);
    assert.deepEqual(await ingestFiles(store), [], "no partials or locks left behind");
  });

  test("two processes pulling different images into one store both record theirs", async () => {
    const base = left.layers[0]?.digest ?? "";
    assert.equal(right.layers[0]?.digest, base, "the fixture shares the base layer");
    const store = newStore();
    const slow = await proxy(8 * MB);
    const leftName = `${slow.host}/conc/left:v1`;
    const rightName = `${slow.host}/conc/right:v1`;
    const [a, b] = await Promise.all([
      startFerry(["pull", "--store", store, leftName]).result,
      startFerry(["pull", "--store", store, rightName]).result,
    ]);
    assertExit(a, 0);
    assertExit(b, 0);
    const index = await readStoreIndex(store);
    assert.deepEqual(
      index.manifests
        .map((m) => [m.annotations?.["org.opencontainers.image.ref.name"], m.digest])
        .sort(),
      [
        [leftName, left.manifestDigest],
        [rightName, right.manifestDigest],
      ].sort(),
    );
    assert.deepEqual(
      await verifiedBlobs(store),
      [...new Set([...blobsOf(left), ...blobsOf(right)])].sort(),
    );
    const baseGets = (await registry.blobGets()).filter(
      (g) => g.digest === base && g.status === 200,
    );
    assert.equal(baseGets.length, 1, "the shared base layer is fetched once for both images");
    assert.deepEqual(await ingestFiles(store), []);
  });
});
