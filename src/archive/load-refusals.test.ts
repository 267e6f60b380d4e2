// Archives ferry must refuse, each with a clear error naming the entry, and the store's names untouched.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { describe, it, type TestContext } from "node:test";
import { gzipSync, zstdCompressSync } from "node:zlib";
import tar from "tar-stream";
import { digestOf } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import { saveArchive } from "./save.ts";
import {
  layerTar,
  load,
  cutShort,
  packed,
  readIndex,
  storeImage,
  type TarEntry,
  type TestImage,
  tempStore,
} from "./test-support.ts";

const NAME = "reg.example:5000/app:1";

/** A valid archive of one image, as entries to tamper with. */
async function validEntries(t: TestContext): Promise<{ entries: TarEntry[]; image: TestImage }> {
  const store = await tempStore(t);
  const image = await storeImage(store, NAME, [{ "etc/a": "a" }, { "etc/b": "b".repeat(3000) }]);
  const record = await store.findImage(NAME);
  assert.ok(record);
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  await saveArchive(out, { store, images: [{ record, repoTags: ["reg.example:5000/app:1"] }] });
  const entries: TarEntry[] = [];
  const extract = tar.extract();
  Readable.from([Buffer.concat(chunks)]).pipe(extract);
  for await (const entry of extract) {
    const body: Buffer[] = [];
    for await (const c of entry) body.push(c as Buffer);
    const { name, type } = entry.header;
    entries.push(type === "directory" ? { name, type } : { name, body: Buffer.concat(body) });
  }
  return { entries, image };
}

const blobName = (digest: string) => `blobs/sha256/${digest.slice(7)}`;

const ENDS_INSIDE = "the archive is truncated: it ends inside this entry";

/** Loads `archive` into a store that already names an image; the load must be refused and the names kept. */
async function assertRefused(t: TestContext, archive: Buffer, pattern: RegExp): Promise<void> {
  const store = await tempStore(t);
  await storeImage(store, "reg.example:5000/other:1", [{ "etc/o": "o" }]);
  const before = await readIndex(store);
  await assert.rejects(load(store, archive), (err: unknown) => {
    assert.ok(isFerryError(err, "FERRY_ARCHIVE_INVALID"), String(err));
    assert.match(err.message, pattern);
    assert.match(err.message, /^archive test\.tar: /);
    return true;
  });
  assert.equal(await readIndex(store), before, "index.json is unchanged");
}

describe("load refuses", () => {
  it("a truncated archive, cut inside an entry or before the end marker", async (t) => {
    const archive = await packed((await validEntries(t)).entries);
    await assertRefused(t, archive.subarray(0, Math.floor(archive.length / 2)), /truncated/);
    await assertRefused(t, archive.subarray(0, archive.length - 1024), /end-of-archive marker/);
  });

  it("an entry whose header declares 8 GiB, then the archive ends; nothing left on disk", async (t) => {
    const blob = blobName(digestOf("never sent"));
    for (const name of [blob, "manifest.json", "0123/layer.tar"]) {
      // A short body fits in the entry's buffer: the archive fails before the store reads it.
      const archive = await cutShort(name, 8 * 2 ** 30, randomBytes(1000));
      const store = await tempStore(t);
      await assert.rejects(load(store, archive), (err: unknown) => {
        assert.ok(isFerryError(err, "FERRY_ARCHIVE_INVALID"), String(err));
        assert.equal(err.message, `archive test.tar: entry "${name}": ${ENDS_INSIDE}`);
        assert.ok(err.hint);
        return true;
      });
      assert.deepEqual(await readdir(join(store.root, "blobs", "sha256")), []);
      assert.deepEqual(await readdir(join(store.root, "ferry", "ingest")).catch(() => []), []);
    }
  });

  it("compressed archives that are cut short or damaged", async (t) => {
    const archive = await packed((await validEntries(t)).entries);
    const gzip = gzipSync(archive);
    await assertRefused(t, gzip.subarray(0, gzip.length - 100), /compressed archive is truncated/);
    const zstd = zstdCompressSync(archive);
    await assertRefused(t, zstd.subarray(0, zstd.length - 100), /compressed archive is truncated/);
    const frame = Buffer.concat([zstd.subarray(0, 4), Buffer.from("not a zstd frame")]);
    await assertRefused(t, frame, /it cannot be decompressed \(/);
    const deflate = Buffer.concat([gzip.subarray(0, 10), randomBytes(64)]);
    await assertRefused(t, deflate, /it cannot be decompressed \(|compressed archive is truncated/);
  });

  it("a blob whose content does not match its digest", async (t) => {
    const { entries, image } = await validEntries(t);
    const name = blobName(digestOf(image.layers[1] as Buffer));
    const bad = entries.map((e) => {
      if (e.name !== name || e.body === undefined) return e;
      const body = Buffer.from(e.body);
      body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0xff;
      return { name, body };
    });
    await assertRefused(
      t,
      await packed(bad),
      new RegExp(`entry "${name}": .*does not match its digest`),
    );
  });

  it("a blob larger than its descriptor, before writing it", async (t) => {
    const { entries, image } = await validEntries(t);
    const name = blobName(digestOf(image.layers[0] as Buffer));
    const big = entries.map((e) =>
      e.name === name
        ? { name, body: Buffer.concat([e.body ?? Buffer.alloc(0), randomBytes(4096)]) }
        : e,
    );
    await assertRefused(t, await packed(big), /is \d+ bytes, but the image's descriptor says \d+/);
  });

  it("a descriptor whose size differs from its blob, with blobs before index.json", async (t) => {
    const { entries, image } = await validEntries(t);
    const manifest = JSON.parse(image.manifest.toString());
    manifest.layers[0].size += 1;
    const lying = Buffer.from(JSON.stringify(manifest));
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: manifest.mediaType,
          digest: digestOf(lying),
          size: lying.length,
          annotations: { "org.opencontainers.image.ref.name": NAME },
        },
      ],
    };
    const blobs = entries.filter(
      (e) => e.name.startsWith("blobs/sha256/") && e.name !== blobName(image.manifestDigest),
    );
    const archive = await packed([
      ...blobs,
      { name: blobName(digestOf(lying)), body: lying },
      { name: "index.json", body: Buffer.from(JSON.stringify(index)) },
    ]);
    await assertRefused(t, archive, /is \d+ bytes, but manifest sha256:\w+ \(layers\[0\]\) says/);
  });

  it("names outside the root: ../escape and absolute paths", async (t) => {
    const { entries } = await validEntries(t);
    const evil = { body: Buffer.from("pwned\n") };
    await assertRefused(
      t,
      await packed([...entries, { name: "../escape", ...evil }]),
      /entry "\.\.\/escape": refused: it escapes the archive root/,
    );
    await assertRefused(
      t,
      await packed([{ name: "/etc/cron.d/evil", ...evil }, ...entries]),
      /entry "\/etc\/cron\.d\/evil": refused: it is an absolute path/,
    );
  });

  it("symbolic links, hard links and fifos", async (t) => {
    const { entries, image } = await validEntries(t);
    const layer = blobName(digestOf(image.layers[0] as Buffer));
    const linked = entries.map((e) =>
      e.name === layer ? { name: layer, type: "symlink" as const, linkname: "/etc/passwd" } : e,
    );
    await assertRefused(t, await packed(linked), /refused: it is a symbolic link/);
    await assertRefused(
      t,
      await packed([...entries, { name: "x", type: "link", linkname: "index.json" }]),
      /hard link/,
    );
    await assertRefused(t, await packed([...entries, { name: "p", type: "fifo" }]), /fifo/);
  });

  it("the same path twice with different content (but not with the same)", async (t) => {
    const { entries } = await validEntries(t);
    const index = entries.find((e) => e.name === "index.json");
    assert.ok(index?.body);
    const other = { name: "index.json", body: Buffer.from('{"schemaVersion":2,"manifests":[]}') };
    await assertRefused(
      t,
      await packed([...entries, other]),
      /entry "index\.json": refused: it appears twice, with different content/,
    );
    const store = await tempStore(t);
    const { summary } = await load(store, await packed([...entries, index]));
    assert.equal(summary.images.length, 1);
  });

  it("references to blobs or files the archive lacks", async (t) => {
    const { entries, image } = await validEntries(t);
    const config = blobName(image.configDigest);
    const oci = entries.filter((e) => e.name !== config && e.name !== "manifest.json");
    await assertRefused(t, await packed(oci), /refers to sha256:\w+, which is not in the archive/);
    const both = entries.filter((e) => e.name !== config);
    await assertRefused(
      t,
      await packed(both),
      new RegExp(`names "${config}", which is not in the archive`),
    );
    const manifestJson = Buffer.from(
      JSON.stringify([
        { Config: "c.json", RepoTags: ["a:1"], Layers: ["gone/layer.tar", "gone/layer.tar"] },
      ]),
    );
    await assertRefused(
      t,
      await packed([
        { name: "c.json", body: image.config },
        { name: "manifest.json", body: manifestJson },
      ]),
      /Layers\[0\] names "gone\/layer\.tar", which is not in the archive/,
    );
  });

  it("a docker layer that does not match the config's diff_id", async (t) => {
    const { image } = await validEntries(t);
    const other = await layerTar({ "etc/other": "x" });
    const manifestJson = Buffer.from(
      JSON.stringify([
        { Config: "c.json", RepoTags: ["a:1"], Layers: ["l/layer.tar", "m/layer.tar"] },
      ]),
    );
    const archive = await packed([
      { name: "c.json", body: image.config },
      { name: "l/layer.tar", body: image.diffs[0] },
      { name: "m/layer.tar", body: other },
      { name: "manifest.json", body: manifestJson },
    ]);
    await assertRefused(
      t,
      archive,
      /entry "m\/layer\.tar": the layer's content hashes to sha256:\w+, but the config's rootfs\.diff_ids\[1\] is/,
    );
  });

  it("what is not an image archive", async (t) => {
    await assertRefused(t, randomBytes(4096), /not a tar archive/);
    await assertRefused(
      t,
      await packed([{ name: "README", body: Buffer.from("hi") }]),
      /neither index\.json .* nor manifest\.json/,
    );
    await assertRefused(t, Buffer.alloc(0), /empty/);
  });
});
