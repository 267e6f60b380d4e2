import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pushImage } from "../../test/fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../../test/fixtures/registry.ts";
import { isFerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import { parseReference } from "../reference/index.ts";
import { RegistryClient, type Repository } from "../registry/index.ts";
import { Store } from "../store/index.ts";
import { RegistryCopySource } from "./copy-source.ts";
import { type DownloadContext, downloadBlob, type TransferUpdate } from "./fetch-blob.ts";
import { SinkPool } from "./sink-pool.ts";

// The blob download driven end to end: a real Distribution registry, a real store, and the
// transitions of fetch-step.ts between attempts.

let registry: RunningRegistry;
let work: string;
let layer: Descriptor;
let bytes: Buffer;
const repo = (): Repository => ({ domain: registry.host, path: "fetch/blob" });
const pool = new SinkPool(1);

before(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "ferry-fetch-blob-"));
  const image = await pushImage(registry.host, "fetch/blob", "v1", {
    layers: [[{ path: "data.bin", size: 600_000 }]],
    compression: "none",
  });
  const [first] = image.layers;
  assert.ok(first !== undefined);
  layer = { mediaType: first.mediaType, digest: first.digest, size: first.size };
  const res = await fetch(`${registry.url}/v2/fetch/blob/blobs/${layer.digest}`);
  bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(bytes.length, layer.size);
});
after(async () => {
  await pool.close();
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

let n = 0;
async function context(
  options: { workers?: boolean; client?: RegistryClient } = {},
): Promise<DownloadContext & { store: Store }> {
  return {
    registry: options.client ?? new RegistryClient(),
    store: await Store.open(join(work, `s${++n}`)),
    pool,
    inlineBelow: options.workers ? 0 : Number.POSITIVE_INFINITY,
    blobLocator: undefined,
    watchers: new Map(),
  };
}

async function gets(): Promise<number[]> {
  await registry.settled();
  return (await registry.blobGets()).filter((g) => g.digest === layer.digest).map((g) => g.status);
}

describe("downloadBlob against a real registry", () => {
  for (const workers of [false, true]) {
    it(`resumes a partial with a Range request and commits the verified blob${workers ? " (worker sink)" : ""}`, async () => {
      const ctx = await context({ workers });
      const half = 250_000;
      await writeFile(ctx.store.ingestPath(layer.digest), bytes.subarray(0, half));
      const before = (await gets()).length;
      const outcome = await downloadBlob(ctx, repo(), layer, () => {}, undefined);
      assert.deepEqual(outcome, { downloaded: true, fetched: layer.size - half, fromPeers: 0 });
      assert.deepEqual(await readFile(ctx.store.blobPath(layer.digest)), bytes);
      assert.deepEqual((await gets()).slice(before), [206]);
    });
  }

  it("a partial holding wrong bytes: the resumed attempt fails verification, the next starts from zero at once", async () => {
    const ctx = await context();
    const prefix = Buffer.from(bytes.subarray(0, 100_000));
    prefix[5] = (prefix[5] as number) ^ 0xff;
    await writeFile(ctx.store.ingestPath(layer.digest), prefix);
    const before = (await gets()).length;
    const updates: TransferUpdate[] = [];
    const outcome = await downloadBlob(ctx, repo(), layer, (u) => updates.push(u), undefined);
    assert.equal(outcome.downloaded, true);
    assert.equal(outcome.fetched, layer.size);
    assert.deepEqual(await readFile(ctx.store.blobPath(layer.digest)), bytes);
    assert.deepEqual((await gets()).slice(before), [206, 200]);
    assert.equal(
      updates.filter((u) => u.status === "retrying").length,
      0,
      "a restart is not a retry",
    );
  });

  it("a blob the registry does not have fails at once with its error; nothing is stored", async () => {
    const ctx = await context();
    const missing = { ...layer, digest: `sha256:${"0".repeat(64)}` };
    await assert.rejects(
      downloadBlob(ctx, repo(), missing, () => {}, undefined),
      (err) => isFerryError(err),
    );
    assert.equal(await ctx.store.hasBlob(missing.digest), false);
  });

  it("the stored blob is not fetched again", async () => {
    const ctx = await context();
    assert.equal((await downloadBlob(ctx, repo(), layer, () => {}, undefined)).downloaded, true);
    const before = (await gets()).length;
    assert.deepEqual(await downloadBlob(ctx, repo(), layer, () => {}, undefined), {
      downloaded: false,
      fetched: 0,
    });
    assert.equal((await gets()).length, before);
  });
});

describe("a copy's source blob (RegistryCopySource.stage) through the same fetch machine", () => {
  it("a partial of wrong bytes left in the ingest area: restarted from zero, staged verified, nothing left behind", async () => {
    const ctx = await context();
    const prefix = Buffer.from(bytes.subarray(0, 100_000));
    prefix[7] = (prefix[7] as number) ^ 0xff;
    await writeFile(ctx.store.ingestPath(layer.digest), prefix);
    const source = new RegistryCopySource(
      ctx.registry,
      ctx.store,
      parseReference(`${registry.host}/fetch/blob:v1`),
    );
    const staged = await source.stage(layer, () => {});
    try {
      assert.equal(staged.fetched, layer.size);
      assert.deepEqual(await staged.read(0, layer.size), bytes);
    } finally {
      await staged.release();
    }
    assert.equal(await ctx.store.hasBlob(layer.digest), false, "a copy stores no blob");
    assert.deepEqual(await readdir(join(ctx.store.root, "ferry", "ingest")), []);
  });
});
