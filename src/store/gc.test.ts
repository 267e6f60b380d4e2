import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { digestOf } from "../digest/index.ts";
import { MediaType } from "../oci/index.ts";
import { checkStore } from "./fsck.ts";
import { prune } from "./gc.ts";
import { readLeases } from "./lease.ts";
import { Store } from "./store.ts";
import { diskUsage } from "./usage.ts";

// The store's lifecycle on a real directory, without a registry: images are written as a pull would.

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-gc-"));
});
after(() => rm(work, { recursive: true, force: true }));

let n = 0;
const newStore = () => Store.open(join(work, `s${++n}`));
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid as number;

/** Writes an image like a pull (layers, config, manifest) and records it; returns its blob digests. */
async function addImage(store: Store, reference: string, layers: string[]): Promise<string[]> {
  const put = async (text: string) => {
    const bytes = Buffer.from(text);
    await store.writeBlob(digestOf(bytes), bytes);
    return { mediaType: MediaType.ociLayerGzip, digest: digestOf(bytes), size: bytes.length };
  };
  const config = { ...(await put(`{"config":"${reference}"}`)), mediaType: MediaType.ociConfig };
  const layerDescs = await Promise.all(layers.map(put));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config,
      layers: layerDescs,
    }),
  );
  const desc = {
    mediaType: MediaType.ociManifest,
    digest: digestOf(manifest),
    size: manifest.length,
  };
  await store.writeBlob(desc.digest, manifest);
  await store.recordImage(reference, desc, desc.digest);
  return [desc.digest, config.digest, ...layerDescs.map((l) => l.digest)];
}

async function blobs(store: Store): Promise<string[]> {
  return (await readdir(join(store.root, "blobs", "sha256"))).map((h) => `sha256:${h}`).sort();
}

describe("store lifecycle", () => {
  it("pins survive a re-pull; touch moves the last use; rm drops the use record", async () => {
    const store = await newStore();
    await addImage(store, "r/a:1", ["base", "a"]);
    assert.equal(await store.setPinned("r/a:1", true), true);
    assert.equal(await store.setPinned("r/none:1", true), false);
    await addImage(store, "r/a:1", ["base", "a2"]);
    const [record] = await store.images();
    assert.equal(record?.pinned, true);
    const old = new Date(Date.now() - 5 * 86_400_000);
    await store.touch("r/a:1", old);
    const used = (await store.lastUsedAt(record!))?.getTime() ?? 0;
    assert.ok(Math.abs(used - old.getTime()) < 1000, `${used} ≈ ${old.getTime()}`);
    await store.touch("r/a:1");
    assert.ok(Date.now() - ((await store.lastUsedAt(record!))?.getTime() ?? 0) < 5000);
    await store.removeImage("r/a:1");
    assert.deepEqual(await readdir(join(store.root, "ferry", "use")), []);
  });

  it("a lease keeps blobs no image names yet; a dead process's lease keeps nothing and is removed", async () => {
    const store = await newStore();
    const [, , ...layers] = await addImage(store, "r/a:1", ["only-a"]);
    await store.removeImage("r/a:1");
    const lease = await store.lease("r/b:1", layers);
    const deadLease = join(store.root, "ferry", "leases", `${deadPid()}-0badc0de.json`);
    await writeFile(deadLease, JSON.stringify({ digests: layers }));

    const report = await prune(store);
    assert.equal(report.blobs.count, 2, "manifest and config go; the leased layer stays");
    assert.deepEqual(await blobs(store), layers);
    assert.equal((await readLeases(store.root, false)).length, 1, "the dead lease was cleaned");
    await assert.rejects(stat(deadLease));

    await lease.release();
    assert.equal((await prune(store)).blobs.count, 1);
    assert.deepEqual(await blobs(store), []);
  });

  it("--all leaves pinned images and images being pulled; df agrees with prune", async () => {
    const store = await newStore();
    const a = await addImage(store, "r/a:1", ["base", "a"]);
    const b = await addImage(store, "r/b:1", ["base", "b"]);
    const c = await addImage(store, "r/c:1", ["c"]);
    await store.setPinned("r/a:1", true);
    const lease = await store.lease("r/c:1", []);
    await store.removeImage("r/b:1");
    const usage = await diskUsage(store);
    const bUnique = b.filter((x) => !a.includes(x));
    const sizeOf = async (xs: string[]) =>
      (await Promise.all(xs.map((x) => stat(store.blobPath(x))))).reduce((s, st) => s + st.size, 0);
    assert.equal(usage.reclaimableBytes, await sizeOf(bUnique));
    assert.equal(usage.bytes, await sizeOf([...new Set([...a, ...b, ...c])]));

    const dry = await prune(store, { rule: { expire: { usedBefore: Infinity } }, dryRun: true });
    assert.equal(dry.reclaimedBytes, usage.reclaimableBytes);
    assert.equal(
      (await blobs(store)).length,
      new Set([...a, ...b, ...c]).size,
      "dry run removes nothing",
    );

    const report = await prune(store, { rule: { expire: { usedBefore: Infinity } } });
    assert.deepEqual(report.images, []);
    assert.deepEqual(await blobs(store), [...new Set([...a, ...c])].sort());
    await lease.release();
    const after = await prune(store, { rule: { expire: { usedBefore: Infinity } } });
    assert.deepEqual(
      after.images.map((i) => i.reference),
      ["r/c:1"],
    );
    assert.deepEqual(await blobs(store), [...a].sort());
  });

  it("sweeps dead processes' temp files and every partial nobody holds, however new", async () => {
    const store = await newStore();
    const dead = deadPid();
    const tmp = join(store.root, "blobs", "sha256", `${"a".repeat(64)}.tmp-${dead}-01234567`);
    const live = join(
      store.root,
      "blobs",
      "sha256",
      `${"b".repeat(64)}.tmp-${process.pid}-01234567`,
    );
    const ingest = join(store.root, "ferry", "ingest");
    const oldPartial = join(ingest, `${"c".repeat(64)}.partial`);
    const newPartial = join(ingest, `${"d".repeat(64)}.partial`);
    const heldPartial = join(ingest, `${"e".repeat(64)}.partial`);
    const deadLock = join(ingest, `${"f".repeat(64)}.lock`);
    for (const f of [tmp, live, oldPartial, newPartial, heldPartial]) await writeFile(f, "12345");
    const dayAgo = new Date(Date.now() - 25 * 3_600_000);
    await utimes(oldPartial, dayAgo, dayAgo);
    await utimes(heldPartial, dayAgo, dayAgo);
    const held = await store.lockIngest(`sha256:${"e".repeat(64)}`);
    await writeFile(deadLock, `${dead} token`);

    const usage = await diskUsage(store);
    assert.deepEqual(usage.partials, { count: 3, bytes: 15 });
    const report = await prune(store);
    assert.equal(report.staleFiles.count, 4);
    assert.equal(report.reclaimedBytes, 15);
    assert.deepEqual((await readdir(ingest)).sort(), [
      `${"e".repeat(64)}.lock`,
      `${"e".repeat(64)}.partial`,
    ]);
    assert.deepEqual(await readdir(join(store.root, "blobs", "sha256")), [live.split("/").at(-1)]);
    await held.release();
  });

  it("fsck quarantines corrupt blobs and names missing ones and the images they break", async () => {
    const store = await newStore();
    const [manifest, config, layer] = await addImage(store, "r/a:1", ["a"]);
    const [, , other] = await addImage(store, "r/b:1", ["b"]);
    assert.equal((await checkStore(store)).ok, true);
    const path = store.blobPath(layer!);
    await rm(path, { force: true });
    await writeFile(path, "not what it was");
    await rm(store.blobPath(other!));
    const report = await checkStore(store);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.corrupt.map((c) => [c.digest, c.images]),
      [[layer, ["r/a:1"]]],
    );
    assert.equal(
      await readFile(join(store.root, "ferry", "quarantine", layer!.slice(7)), "utf8"),
      "not what it was",
    );
    assert.deepEqual(report.missing, [{ digest: other, images: ["r/b:1"] }]);
    assert.deepEqual(report.brokenImages, ["r/a:1", "r/b:1"]);
    assert.ok(await store.hasBlob(manifest!));
    assert.ok(await store.hasBlob(config!));
  });
});
