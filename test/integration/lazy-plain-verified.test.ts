// A plain (non-eStargz) layer read to its end by `ferry lazy` is checked against its digest.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { packed } from "../../src/archive/test-support.ts";
import { LazyImage } from "../../src/lazy/index.ts";
import { isFerryError } from "../../src/observe/index.ts";
import { putManifest, RegistryClient, uploadBlob } from "../../src/registry/index.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
/** Stored deflate blocks: two tars of one length give gzip members of one length. */
const layerOf = async (text: string) =>
  gzipSync(await packed([{ name: "etc/x", body: Buffer.from(text) }]), { level: 0 });

describe("ferry lazy over a plain layer", () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  const repository = { domain: "", path: "lazy/plain" };
  let layer: Buffer;
  let other: Buffer;

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient();
    const repo = { ...repository, domain: registry.host };
    layer = await layerOf("one\n");
    other = await layerOf("two\n");
    assert.equal(other.length, layer.length);
    const tar = await packed([{ name: "etc/x", body: Buffer.from("one\n") }]);
    const config = Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [sha(tar)] },
      }),
    );
    const desc = (b: Buffer, mediaType: string) => ({ mediaType, digest: sha(b), size: b.length });
    const configDesc = desc(config, "application/vnd.oci.image.config.v1+json");
    const layerDesc = desc(layer, "application/vnd.oci.image.layer.v1.tar+gzip");
    for (const [d, b] of [
      [configDesc, config],
      [layerDesc, layer],
    ] as const)
      await uploadBlob(client, repo, d, async (s, e) => b.subarray(s, e));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: configDesc,
        layers: [layerDesc],
      }),
    );
    await putManifest(client, repo, "v1", "application/vnd.oci.image.manifest.v1+json", manifest);
  });
  after(async () => {
    await client.close();
    await registry?.stop();
  });

  const open = () =>
    LazyImage.open({
      registry: client,
      repository: { ...repository, domain: registry.host },
      reference: "v1",
    });

  test("a listing reads the whole layer: the registry's bytes must be the layer's digest", async () => {
    const entries = await (await open()).list("", { recursive: true });
    assert.deepEqual(
      entries.map((e) => e.path),
      ["etc", "etc/x"],
    );
    // The registry's storage is damaged behind its back: a valid gzip tar of the same size.
    const hex = sha(layer).slice(7);
    await writeFile(
      join(registry.dir, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"),
      other,
    );
    await assert.rejects((await open()).list("", { recursive: true }), (err) =>
      isFerryError(err, "FERRY_DIGEST_MISMATCH"),
    );
  });
});
