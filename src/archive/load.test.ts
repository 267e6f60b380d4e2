import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { digestOf } from "../digest/index.ts";
import { MediaType } from "../oci/index.ts";
import type { Store } from "../store/index.ts";
import { saveArchive } from "./save.ts";
import { layerTar, load, packed, storeImage, tempStore } from "./test-support.ts";

async function save(store: Store, references: string[]): Promise<Buffer> {
  const images = [];
  for (const reference of references) {
    const record = await store.findImage(reference);
    assert.ok(record, reference);
    images.push({ record, repoTags: [reference.replace("hub.test/library/", "")] });
  }
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  await saveArchive(out, { store, images });
  return Buffer.concat(chunks);
}

async function entryNames(archive: Buffer): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  Readable.from([archive]).pipe(extract);
  for await (const entry of extract) {
    names.push(entry.header.name);
    entry.resume();
  }
  return names;
}

describe("save then load", () => {
  it("round-trips images bit for bit, each shared blob stored once", async (t) => {
    const from = await tempStore(t);
    const a = await storeImage(from, "hub.test/library/app:1", [
      { "etc/base": "base" },
      { a: "a" },
    ]);
    const b = await storeImage(from, "reg.example:5000/x/b:2", [
      { "etc/base": "base" },
      { b: "b" },
    ]);
    const archive = await save(from, ["hub.test/library/app:1", "reg.example:5000/x/b:2"]);

    const names = await entryNames(archive);
    const blobs = names.filter((n) => n.startsWith("blobs/sha256/") && n.length > 13);
    assert.equal(blobs.length, new Set(blobs).size, "no blob twice");
    assert.equal(blobs.length, 7, "2 manifests, 2 configs, 3 distinct layers");
    assert.deepEqual(names.slice(0, 4), [
      "oci-layout",
      "index.json",
      "manifest.json",
      "repositories",
    ]);

    const to = await tempStore(t);
    const { summary } = await load(to, archive);
    assert.equal(summary.format, "oci");
    assert.equal(summary.blobsWritten, 7);
    assert.deepEqual(
      summary.images.map((i) => [i.reference, i.digest]),
      [
        ["hub.test/library/app:1", a.manifestDigest],
        ["reg.example:5000/x/b:2", b.manifestDigest],
      ],
    );
    for (const image of [a, b]) {
      for (const blob of [image.manifest, image.config, ...image.layers]) {
        assert.deepEqual(await to.readBlob(digestOf(blob)), blob);
      }
    }
    const record = await to.findImage("hub.test/library/app:1");
    assert.equal(record?.descriptor.digest, a.manifestDigest);
    assert.deepEqual(record?.descriptor.platform, { os: "linux", architecture: "amd64" });

    // Loading again writes nothing new, and saving the loaded images gives the same bytes.
    const again = await load(to, archive);
    assert.equal(again.summary.blobsWritten, 0);
    assert.equal(again.summary.blobsSkipped, 7);
    assert.deepEqual(await save(to, ["hub.test/library/app:1", "reg.example:5000/x/b:2"]), archive);
  });
});

describe("loading docker save archives", () => {
  it("builds containerd's schema 2 manifest, follows layer links and checks diff_ids", async (t) => {
    const base = await layerTar({ "etc/base": "base" });
    const top = await layerTar({ "etc/top": "top" });
    const config = Buffer.from(
      JSON.stringify({
        architecture: "arm64",
        os: "linux",
        variant: "v8",
        rootfs: { type: "layers", diff_ids: [digestOf(base), digestOf(top), digestOf(base)] },
      }),
    );
    const configName = `${digestOf(config).slice(7)}.json`;
    const archive = await packed([
      { name: "l1/", type: "directory" },
      { name: "l1/layer.tar", body: base },
      { name: "l2/layer.tar", body: top },
      { name: "l3/layer.tar", type: "symlink", linkname: "../l1/layer.tar" },
      { name: configName, body: config },
      {
        name: "manifest.json",
        body: Buffer.from(
          JSON.stringify([
            {
              Config: configName,
              RepoTags: ["app:1", "app:latest"],
              Layers: ["l1/layer.tar", "l2/layer.tar", "l3/layer.tar"],
            },
          ]),
        ),
      },
    ]);
    const store = await tempStore(t);
    const { summary } = await load(store, archive);
    const layer = (b: Buffer) =>
      `{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"${digestOf(b)}","size":${b.length}}`;
    const manifest = Buffer.from(
      `{"schemaVersion":2,"mediaType":"${MediaType.dockerManifest}","config":{"mediaType":"${MediaType.dockerConfig}","digest":"${digestOf(config)}","size":${config.length}},"layers":[${layer(base)},${layer(top)},${layer(base)}]}`,
    );
    assert.equal(summary.format, "docker");
    assert.deepEqual(
      summary.images.map((i) => [i.reference, i.digest, i.configDigest]),
      [
        ["hub.test/library/app:1", digestOf(manifest), digestOf(config)],
        ["hub.test/library/app:latest", digestOf(manifest), digestOf(config)],
      ],
    );
    assert.deepEqual(await store.readBlob(digestOf(manifest)), manifest);
    assert.deepEqual(await store.readBlob(digestOf(top)), top);
    const record = await store.findImage("hub.test/library/app:1");
    assert.deepEqual(record?.descriptor.platform, {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
    });
  });

  it("reads gzip layers and gzip-compressed archives", async (t) => {
    const diff = await layerTar({ "etc/x": "x" });
    const gz = gzipSync(diff);
    const config = Buffer.from(
      JSON.stringify({
        os: "linux",
        architecture: "amd64",
        rootfs: { type: "layers", diff_ids: [digestOf(diff)] },
      }),
    );
    const archive = await packed([
      { name: "c.json", body: config },
      { name: "l/layer.tar", body: gz },
      {
        name: "manifest.json",
        body: Buffer.from(
          JSON.stringify([{ Config: "c.json", RepoTags: null, Layers: ["l/layer.tar"] }]),
        ),
      },
    ]);
    const store = await tempStore(t);
    const { summary, events } = await load(store, gzipSync(archive));
    assert.equal(summary.images.length, 0);
    assert.equal(summary.unnamed.length, 1);
    assert.ok(events.some((e) => e.type === "unnamed"));
    const manifest = JSON.parse(
      (await store.readBlob(summary.unnamed[0]?.digest ?? "")).toString(),
    );
    assert.equal(manifest.layers[0].mediaType, MediaType.dockerLayerGzip);
    assert.equal(manifest.layers[0].digest, digestOf(gz));
  });
});
