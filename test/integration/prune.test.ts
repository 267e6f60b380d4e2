// Store lifecycle end to end: prune, pins, last use, df, fsck, GC racing a pull, kill -9.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, type FileSpec, pushImage, pushIndex } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  type FerryResult,
  ferry,
  lines,
  readStoreIndex,
  REF_NAME,
  removeDir,
  startFerry,
  tempDir,
  until,
  verifiedBlobs,
} from "./cli.ts";

const DAY = 86_400_000;
const hostArch = process.arch === "arm64" ? "arm64" : "amd64";
const otherArch = hostArch === "arm64" ? "amd64" : "arm64";

const base: FileSpec[] = [{ path: "lib/base.so", size: 30_000, seed: "gc-base" }];
const app = (name: string, size = 20_000): FileSpec[] => [
  { path: `app/${name}`, size, seed: name },
];

function blobsOf(image: BuiltImage): string[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

async function ok(args: string[]): Promise<FerryResult> {
  const r = await ferry(args);
  assertExit(r, 0);
  return r;
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse((await ok([...args, "--json"])).stdout) as T;
}

async function blobFiles(store: string): Promise<string[]> {
  return (await readdir(join(store, "blobs", "sha256"))).map((h) => `sha256:${h}`).sort();
}

async function bytesOf(store: string, digests: Iterable<string>): Promise<number> {
  let total = 0;
  for (const d of new Set(digests))
    total += (await stat(join(store, "blobs", "sha256", d.slice(7)))).size;
  return total;
}

/** Sets an image's last use, as the use record's mtime (ferry/use/<sha256 of the reference>). */
async function setLastUse(store: string, reference: string, at: number): Promise<void> {
  const hex = createHash("sha256").update(reference).digest("hex");
  await utimes(join(store, "ferry", "use", hex), new Date(at), new Date(at));
}

interface PruneJson {
  dryRun: boolean;
  images: Array<{ reference: string; reason: string; blobs: number; bytes: number }>;
  blobs: { count: number; bytes: number };
  reclaimedBytes: number;
}
interface DfJson {
  imageCount: number;
  blobCount: number;
  bytes: number;
  reclaimableBytes: number;
  images: Array<{
    reference: string;
    bytes: number;
    sharedBytes: number;
    uniqueBytes: number;
    pinned: boolean;
  }>;
}

describe("ferry prune, pin, df and fsck", () => {
  let registry: RunningRegistry;
  let work: string;
  let a: BuiltImage;
  let b: BuiltImage;
  let c: BuiltImage;
  let big: BuiltImage;
  let multi: { indexDigest: string; images: BuiltImage[] };
  const proxies: RunningProxy[] = [];
  const ref = (path: string) => `${registry.host}/${path}`;
  let storeCount = 0;
  const newStore = () => join(work, `store-${++storeCount}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("prune");
    const host = registry.host;
    [a, b, c, big, multi] = await Promise.all([
      pushImage(host, "gc/a", "v1", { layers: [base, app("a")], compression: "none" }),
      pushImage(host, "gc/b", "v1", { layers: [base, app("b")], compression: "none" }),
      pushImage(host, "gc/c", "v1", { layers: [app("c", 40_000)], compression: "none" }),
      pushImage(host, "gc/big", "v1", {
        layers: [base, app("big", 3_000_000)],
        compression: "none",
      }),
      pushIndex(host, "gc/multi", "v1", [
        { layers: [app("m-host")], platform: { os: "linux", architecture: hostArch } },
        { layers: [app("m-other")], platform: { os: "linux", architecture: otherArch } },
      ]),
    ]);
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  test("prune removes only dangling blobs after rm; --dry-run removes nothing; df equals the files on disk", async () => {
    const store = newStore();
    const [nameA, nameB, nameM] = [ref("gc/a:v1"), ref("gc/b:v1"), ref("gc/multi:v1")];
    await ok(["pull", "-q", "--store", store, nameA, nameB, nameM]);
    const hostImage = multi.images[0] as BuiltImage; // the platform this host pulls
    const all = await blobFiles(store);
    assert.ok(all.includes(multi.indexDigest), "the source index is stored");

    const df = await json<DfJson>(["df", "--store", store]);
    assert.deepEqual([df.imageCount, df.blobCount, df.reclaimableBytes], [3, all.length, 0]);
    assert.equal(df.bytes, await bytesOf(store, all), "shared base counted once");
    const rowA = df.images.find((i) => i.reference === nameA);
    assert.equal(rowA?.bytes, await bytesOf(store, blobsOf(a)));
    assert.equal(rowA?.sharedBytes, await bytesOf(store, [a.layers[0]?.digest ?? ""]));
    assert.equal(rowA?.uniqueBytes, (rowA?.bytes ?? 0) - (rowA?.sharedBytes ?? 0));
    const verbose = await ok(["df", "-v", "--store", store]);
    assert.match(verbose.stdout, /^IMAGES +BLOBS +SIZE +RECLAIMABLE\n/);
    assert.match(verbose.stdout, /REFERENCE +SIZE +SHARED SIZE +UNIQUE SIZE +PINNED +LAST USED\n/);

    // Nothing is dangling yet: prune keeps every image, including the multi-platform index blob.
    const idle = await ok(["prune", "--store", store]);
    assert.deepEqual(lines(idle.stdout), ["deleted 0 blobs", "Total reclaimed space: 0B"]);
    assert.deepEqual(await blobFiles(store), all);

    await ok(["rm", "--store", store, nameA, nameM]);
    const dangling = [
      ...blobsOf(a).slice(0, 2),
      a.layers[1]?.digest ?? "",
      multi.indexDigest,
      ...blobsOf(hostImage),
    ];
    const reclaimable = await bytesOf(store, dangling);
    assert.equal((await json<DfJson>(["df", "--store", store])).reclaimableBytes, reclaimable);

    const dry = await json<PruneJson>(["prune", "--dry-run", "--store", store]);
    assert.deepEqual(
      [dry.dryRun, dry.blobs.count, dry.reclaimedBytes],
      [true, dangling.length, reclaimable],
    );
    assert.deepEqual(await blobFiles(store), all, "a dry run removes nothing");
    const dryText = await ok(["prune", "--dry-run", "--store", store]);
    assert.match(dryText.stdout, /Total reclaimable space: .*dry run: nothing was removed/);

    const real = await ok(["prune", "--store", store]);
    assert.equal(lines(real.stdout)[0], `deleted ${dangling.length} blobs`);
    assert.match(lines(real.stdout)[1] ?? "", /^Total reclaimed space: \d+(\.\d+)?kB$/);
    assert.deepEqual(await verifiedBlobs(store), blobsOf(b).sort(), "b keeps the shared base");
    assert.equal(
      (await json<DfJson>(["df", "--store", store])).bytes,
      await bytesOf(store, blobsOf(b)),
    );
  });

  test("--all removes unpinned images; a pinned image survives every option", async () => {
    const store = newStore();
    const [nameA, nameB, nameC] = [ref("gc/a:v1"), ref("gc/b:v1"), ref("gc/c:v1")];
    await ok(["pull", "-q", "--store", store, nameA, nameB, nameC]);
    assert.equal((await ok(["pin", "--store", store, nameB])).stdout, `Pinned: ${nameB}\n`);
    assertExit(await ferry(["pin", "--store", store, ref("gc/none:v1")]), 3);

    const table = lines((await ok(["images", "--store", store])).stdout).map((l) =>
      l.split(/ {3,}/),
    );
    assert.deepEqual(table[0], ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED", "PINNED"]);
    assert.deepEqual(
      table.slice(1).map((r) => [r[0], r[5]]),
      [
        [ref("gc/a"), undefined],
        [ref("gc/b"), "pinned"],
        [ref("gc/c"), undefined],
      ],
    );
    const listed = await json<Array<{ reference: string; pinned: boolean; lastUsedAt: string }>>([
      "images",
      "--store",
      store,
    ]);
    assert.deepEqual(
      listed.map((i) => i.pinned),
      [false, true, false],
    );
    for (const i of listed) assert.ok(Date.now() - Date.parse(i.lastUsedAt) < 60_000);

    for (const name of [nameA, nameB]) await setLastUse(store, name, Date.now() - 30 * DAY);
    for (const options of [
      ["--keep-storage", "0B", "--until", "1d"],
      ["--policy", "--high", "1", "--low", "0"],
    ]) {
      const r = await json<PruneJson>(["prune", ...options, "--store", store]);
      assert.ok(
        !r.images.some((i) => i.reference === nameB),
        `${options}: ${JSON.stringify(r.images)}`,
      );
    }
    // (the two runs above removed a, then c)
    const last = await json<PruneJson>(["prune", "--all", "--store", store]);
    assert.deepEqual(last.images, []);
    assert.deepEqual(await verifiedBlobs(store), blobsOf(b).sort());
    assert.deepEqual(
      (await readStoreIndex(store)).manifests.map((m) => m.annotations?.[REF_NAME]),
      [nameB],
    );

    // A re-pull keeps the pin; unpinned, --all removes it.
    await ok(["pull", "-q", "--store", store, nameB]);
    assert.equal(
      (await readStoreIndex(store)).manifests[0]?.annotations?.["dev.ferry.pinned"],
      "true",
    );
    assert.equal((await ok(["unpin", "--store", store, nameB])).stdout, `Unpinned: ${nameB}\n`);
    const gone = await ok(["prune", "--all", "--store", store]);
    assert.equal(
      lines(gone.stdout)[0]?.replace(/, [\d.]+kB\)$/, ")"),
      `untagged: ${nameB} (4 blobs)`,
    );
    assert.deepEqual(await blobFiles(store), []);
  });

  test("--until goes by last use; a pull of a present image counts as a use", async () => {
    const store = newStore();
    const [nameA, nameB, nameC] = [ref("gc/a:v1"), ref("gc/b:v1"), ref("gc/c:v1")];
    await ok(["pull", "-q", "--store", store, nameA, nameB, nameC]);
    await setLastUse(store, nameA, Date.now() - 3 * DAY);
    await setLastUse(store, nameB, Date.now() - 1 * DAY);
    const listed = await json<Array<{ reference: string; lastUsedAt: string }>>([
      "images",
      "--store",
      store,
    ]);
    assert.ok(Math.abs(Date.parse(listed[1]?.lastUsedAt ?? "") - (Date.now() - DAY)) < 60_000);

    const r = await json<PruneJson>(["prune", "--until", "48h", "--store", store]);
    assert.deepEqual(
      r.images.map((i) => [i.reference, i.reason]),
      [[nameA, "expired"]],
    );
    assert.ok(await verifiedBlobs(store).then((bs) => blobsOf(b).every((d) => bs.includes(d))));

    await setLastUse(store, nameC, Date.now() - 3 * DAY);
    await ok(["pull", "-q", "--store", store, nameC]);
    const none = await json<PruneJson>(["prune", "--all", "--until", "2d", "--store", store]);
    assert.deepEqual(none.images, [], "c was used by the pull just now");
    assertExit(await ferry(["prune", "--until", "48", "--store", store]), 2);
    assertExit(await ferry(["prune", "--keep-storage", "20G", "--store", store]), 2);
  });

  test("--keep-storage evicts least recently used images until the store fits", async () => {
    const store = newStore();
    const [nameA, nameB, nameC] = [ref("gc/a:v1"), ref("gc/b:v1"), ref("gc/c:v1")];
    await ok(["pull", "-q", "--store", store, nameA, nameB, nameC]);
    await setLastUse(store, nameC, Date.now() - 3 * DAY);
    await setLastUse(store, nameA, Date.now() - 2 * DAY);
    await setLastUse(store, nameB, Date.now() - 1 * DAY);
    const total = (await json<DfJson>(["df", "--store", store])).bytes;
    const cBytes = await bytesOf(store, blobsOf(c));
    const aUnique = await bytesOf(store, [...blobsOf(a).slice(0, 2), a.layers[1]?.digest ?? ""]);

    const first = await json<PruneJson>([
      "prune",
      "--keep-storage",
      `${total - cBytes}B`,
      "--store",
      store,
    ]);
    assert.deepEqual(
      first.images.map((i) => [i.reference, i.reason, i.bytes]),
      [[nameC, "evicted", cBytes]],
    );
    const second = await json<PruneJson>([
      "prune",
      "--keep-storage",
      `${total - cBytes - 1}`,
      "--store",
      store,
    ]);
    assert.deepEqual(
      second.images.map((i) => [i.reference, i.bytes]),
      [[nameA, aUnique]],
    );
    assert.deepEqual(await verifiedBlobs(store), blobsOf(b).sort());
    assert.equal((await json<DfJson>(["df", "--store", store])).bytes, total - cBytes - aUnique);
  });

  test("fsck quarantines a corrupted blob, reports a missing one, and exits 6 until re-pulled", async () => {
    const store = newStore();
    const [nameA, nameB] = [ref("gc/a:v1"), ref("gc/b:v1")];
    await ok(["pull", "-q", "--store", store, nameA, nameB]);
    assert.match((await ok(["fsck", "--store", store])).stdout, /no problems found/);

    const layer = a.layers[1]?.digest ?? "";
    const path = join(store, "blobs", "sha256", layer.slice(7));
    const bytes = await readFile(path);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await chmod(path, 0o644);
    await writeFile(path, bytes);
    await rm(join(store, "blobs", "sha256", b.configDigest.slice(7)));

    const r = await ferry(["fsck", "--json", "--store", store]);
    assertExit(r, 6);
    const report = JSON.parse(r.stdout) as {
      corrupt: Array<{ digest: string; images: string[]; quarantinedTo: string }>;
      missing: Array<{ digest: string; images: string[] }>;
      brokenImages: string[];
    };
    assert.deepEqual(
      report.corrupt.map((x) => [x.digest, x.images]),
      [[layer, [nameA]]],
    );
    assert.deepEqual(report.missing, [{ digest: b.configDigest, images: [nameB] }]);
    assert.deepEqual(report.brokenImages, [nameA, nameB].sort());
    assert.deepEqual(await readFile(join(store, "ferry", "quarantine", layer.slice(7))), bytes);
    await assert.rejects(stat(path), "moved out of blobs/");

    const text = await ferry(["fsck", "--store", store]);
    assertExit(text, 6);
    assert.match(
      text.stdout,
      new RegExp(`missing: ${b.configDigest}; needed by ${nameB.replaceAll(".", "\\.")}`),
    );
    assert.match(text.stderr, /hint: pull the broken images again/);

    await ok(["pull", "-q", "--store", store, nameA, nameB]);
    await ok(["fsck", "--store", store]);
    assert.deepEqual(
      await verifiedBlobs(store),
      [...new Set([...blobsOf(a), ...blobsOf(b)])].sort(),
    );
  });

  test("prune --all while another image is being pulled loses none of the pull's blobs", async () => {
    const store = newStore();
    const nameA = ref("gc/a:v1");
    await ok(["pull", "-q", "--store", store, nameA]);
    const slow = await startProxy({ target: registry.host, bytesPerSecond: 2_000_000 });
    proxies.push(slow);
    const nameBig = `${slow.host}/gc/big:v1`;
    const bigLayer = big.layers[1]?.digest ?? "";
    const partial = join(store, "ferry", "ingest", `${bigLayer.slice(7)}.partial`);

    const pull = startFerry(["pull", "--store", store, nameBig]);
    // Once the big layer is arriving, the pull has found the shared base "already exists".
    await until("bytes of the big layer in its partial", async () => {
      if (pull.child.exitCode !== null) assert.fail(describeRun(await pull.result));
      return ((await stat(partial).catch(() => undefined))?.size ?? 0) > 0;
    });
    const pruned = await json<PruneJson>(["prune", "--all", "--store", store]);
    assert.deepEqual(
      pruned.images.map((i) => i.reference),
      [nameA],
    );
    assert.ok(pull.child.exitCode === null, "the pull was still running during the prune");
    assert.ok(await stat(partial), "the partial download was left alone");

    const done = await pull.result;
    assertExit(done, 0);
    assert.match(done.stdout, /Status: Downloaded newer image for/);
    assert.deepEqual(
      await verifiedBlobs(store),
      blobsOf(big).sort(),
      "a's unique blobs went, base stayed",
    );
    await ok(["fsck", "--store", store]);
    assert.deepEqual(await readdir(join(store, "ferry", "leases")), []);
  });

  test("kill -9 during a prune leaves a store that works", async () => {
    const store = newStore();
    const [nameA, nameC] = [ref("gc/a:v1"), ref("gc/c:v1")];
    await ok(["pull", "-q", "--store", store, nameA, nameC]);
    await ok(["pin", "--store", store, nameA]);
    // Many dangling (but valid) blobs make the sweep long enough to interrupt.
    const dir = join(store, "blobs", "sha256");
    await Promise.all(
      Array.from({ length: 2000 }, async () => {
        const data = randomBytes(64);
        await writeFile(join(dir, createHash("sha256").update(data).digest("hex")), data);
      }),
    );
    const before = (await readdir(dir)).length;
    const prune = startFerry(["prune", "--all", "--store", store]);
    // Polled tightly: the sweep must be caught between its first and last removal.
    await until(
      "the sweep's first removal",
      async () => {
        if (prune.child.exitCode !== null)
          assert.fail(`prune ended before it was killed:\n${describeRun(await prune.result)}`);
        return (await readdir(dir)).length < before;
      },
      30_000,
      { everyMs: 1 },
    );
    prune.child.kill("SIGKILL");
    assert.equal((await prune.result).signal, "SIGKILL");
    assert.ok((await readdir(dir)).length > blobsOf(a).length, "killed mid-sweep");
    assert.ok(await lstat(join(store, "ferry", "index.lock")), "holding the index lock");

    // Every name index.json holds still has all its blobs; a pull and a prune then work.
    await ok(["fsck", "--store", store]);
    await ok(["pull", "-q", "--store", store, nameC]);
    await ok(["prune", "--store", store]);
    assert.deepEqual(
      await verifiedBlobs(store),
      [...new Set([...blobsOf(a), ...blobsOf(c)])].sort(),
    );
    assert.deepEqual(
      (await readStoreIndex(store)).manifests.map((m) => m.annotations?.[REF_NAME]).sort(),
      [nameA, nameC].sort(),
    );
  });
});
