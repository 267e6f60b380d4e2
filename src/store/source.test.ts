import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { digestOf } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import {
  type Descriptor,
  MediaType,
  readRange,
  resolveImage,
  type SourceManifest,
} from "../oci/index.ts";
import { BlobFileSource, StoreSource } from "./source.ts";
import { Store } from "./store.ts";

// resolveImage (fetch the manifest, pick the platform) over the store's source, on a real directory.

let work: string;
let store: Store;
let source: StoreSource;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-resolve-"));
  store = await Store.open(join(work, "store"));
  source = new StoreSource(store);
});
after(() => rm(work, { recursive: true, force: true }));

const AMD64 = { os: "linux", architecture: "amd64" };
const ARM64 = { os: "linux", architecture: "arm64" };

function doc(value: unknown): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(JSON.stringify(value));
  return { bytes, digest: digestOf(bytes) };
}

function image(mark: string) {
  const blob = (seed: string): Descriptor => ({
    mediaType: MediaType.ociLayerGzip,
    digest: digestOf(`${mark}-${seed}`),
    size: 10,
  });
  return doc({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { ...blob("config"), mediaType: MediaType.ociConfig },
    layers: [blob("layer")],
  });
}

const entry = (m: { bytes: Buffer; digest: string }, platform: object, size = m.bytes.length) => ({
  mediaType: MediaType.ociManifest,
  digest: m.digest,
  size,
  platform,
});

/** Stores `top` under `name` and the given children by digest. */
async function put(
  name: string,
  top: { bytes: Buffer; digest: string },
  mediaType: string,
  children: Array<{ bytes: Buffer; digest: string }> = [],
): Promise<void> {
  for (const c of [top, ...children]) await store.writeBlob(c.digest, c.bytes);
  await store.recordImage(
    name,
    { mediaType, digest: top.digest, size: top.bytes.length },
    top.digest,
  );
}

describe("resolveImage over the store", () => {
  it("a single image: itself, no index", async () => {
    const m = image("single");
    await put("127.0.0.1:5000/single:v1", m, MediaType.ociManifest);
    const r = await resolveImage(source, "127.0.0.1:5000/single:v1", AMD64);
    assert.equal(r.index, undefined);
    assert.equal(r.descriptor.digest, m.digest);
    assert.equal(r.descriptor.size, m.bytes.length);
    assert.ok(r.bytes.equals(m.bytes));
    assert.equal(r.manifest.layers.length, 1);
  });

  it("an index: the platform's manifest, its platform kept, the top told first", async () => {
    const amd = image("amd");
    const arm = image("arm");
    const index = doc({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [entry(amd, AMD64), entry(arm, ARM64)],
    });
    await put("127.0.0.1:5000/multi:v1", index, MediaType.ociIndex, [amd, arm]);
    const seen: SourceManifest[] = [];
    const r = await resolveImage(source, "127.0.0.1:5000/multi:v1", ARM64, {
      onTop: (top) => seen.push(top),
    });
    assert.deepEqual(
      seen.map((t) => t.digest),
      [index.digest],
    );
    assert.equal(r.top.digest, index.digest);
    assert.equal(r.index?.manifests.length, 2);
    assert.equal(r.descriptor.digest, arm.digest);
    assert.deepEqual(r.descriptor.platform, ARM64);
    assert.ok(r.bytes.equals(arm.bytes));
  });

  it("held bytes of the right size are used; others are not", async () => {
    const amd = image("held");
    const index = doc({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [entry(amd, AMD64)],
    });
    // The child is not in the store: only `held` can give it.
    await put("127.0.0.1:5000/held:v1", index, MediaType.ociIndex);
    const r = await resolveImage(source, "127.0.0.1:5000/held:v1", AMD64, {
      held: async () => amd.bytes,
    });
    assert.ok(r.bytes.equals(amd.bytes));
    await assert.rejects(
      resolveImage(source, "127.0.0.1:5000/held:v1", AMD64, {
        held: async () => Buffer.concat([amd.bytes, Buffer.from(" ")]),
      }),
      (err) => isFerryError(err, "FERRY_MANIFEST_UNKNOWN"),
    );
  });

  it("refuses a child whose size is not the index's, an index inside an index, a missing platform", async () => {
    const amd = image("sized");
    const inner = doc({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [entry(amd, AMD64)],
    });
    const index = doc({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        entry(amd, AMD64, amd.bytes.length + 1),
        { ...entry(inner, ARM64), mediaType: MediaType.ociIndex },
      ],
    });
    await put("127.0.0.1:5000/bad:v1", index, MediaType.ociIndex, [amd, inner]);
    await assert.rejects(resolveImage(source, "127.0.0.1:5000/bad:v1", AMD64), (err) =>
      isFerryError(err, "FERRY_SIZE_MISMATCH"),
    );
    await assert.rejects(resolveImage(source, "127.0.0.1:5000/bad:v1", ARM64), (err) =>
      isFerryError(err, "FERRY_UNSUPPORTED_MANIFEST"),
    );
    await assert.rejects(
      resolveImage(source, "127.0.0.1:5000/bad:v1", { os: "linux", architecture: "s390x" }),
      (err) => isFerryError(err, "FERRY_NO_MATCHING_PLATFORM"),
    );
  });
});

describe("StoreSource ranges", () => {
  it("readRange refuses a range a truncated blob file ends inside", async () => {
    const bytes = Buffer.from("a stored blob whose file is cut short on disk");
    const desc = {
      mediaType: "application/octet-stream",
      digest: digestOf(bytes),
      size: bytes.length,
    };
    await store.writeBlob(desc.digest, bytes);
    assert.ok((await readRange(source, desc, { start: 2, end: 20 })).equals(bytes.subarray(2, 20)));
    await chmod(store.blobPath(desc.digest), 0o644); // blobs are stored read-only
    await truncate(store.blobPath(desc.digest), 10);
    await assert.rejects(readRange(source, desc, { start: 2, end: 20 }), (err) =>
      isFerryError(err, "FERRY_SIZE_MISMATCH"),
    );
  });
});

describe("BlobFileSource: a verified ingest file read before it is committed", () => {
  it("reads ranges and the whole blob (verified) of its one blob, and no other", async () => {
    const bytes = Buffer.from("a blob a copy staged in the ingest area to upload it");
    const desc = {
      mediaType: "application/octet-stream",
      digest: digestOf(bytes),
      size: bytes.length,
    };
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    try {
      await writer.open();
      await writer.write(bytes);
      await writer.verify();
      const staged = new BlobFileSource(writer.path, desc);
      assert.equal(await staged.stat(desc.digest), bytes.length);
      assert.ok(
        (await readRange(staged, desc, { start: 5, end: 30 })).equals(bytes.subarray(5, 30)),
      );
      const whole = await staged.open(desc);
      assert.ok(Buffer.concat(await whole.toArray()).equals(bytes));
      const other = { ...desc, digest: digestOf("another blob") };
      assert.equal(await staged.stat(other.digest), undefined);
      await assert.rejects(staged.open(other), (err) => isFerryError(err, "FERRY_BLOB_UNKNOWN"));
      await assert.rejects(readRange(staged, desc, { start: 40, end: 60 }), (err) =>
        isFerryError(err, "FERRY_INVALID_ARGUMENT"),
      );
    } finally {
      await writer.discard();
    }
    assert.equal(await store.hasBlob(desc.digest), false);
  });
});
