/**
 * Fixtures for the tests beside this file (not exported from index.ts): temp stores holding
 * small images, tar archives built entry by entry, and a load that captures its events.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { TestContext } from "node:test";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { digestOf } from "../digest/index.ts";
import { type Descriptor, MediaType } from "../oci/index.ts";
import { Store } from "../store/index.ts";
import { type LoadEvent, type LoadSummary, loadArchive } from "./load.ts";

/** Stands in for Docker Hub in these tests (only reference/ may spell the real name). */
export const HUB = "hub.test";

export async function tempStore(t: TestContext): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-archive-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return Store.open(join(dir, "store"));
}

/** A tar of small files: what a layer is. */
export function layerTar(files: Record<string, string>): Promise<Buffer> {
  return packed(
    Object.entries(files).map(([name, content]) => ({ name, body: Buffer.from(content) })),
  );
}

export interface TestImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layers: Buffer[];
  /** Uncompressed layer tars (diff_ids are their digests). */
  diffs: Buffer[];
}

/** Builds an OCI image with gzip layers, stores its blobs and records it under `reference`. */
export async function storeImage(
  store: Store,
  reference: string,
  layers: Array<Record<string, string>>,
): Promise<TestImage> {
  const diffs = await Promise.all(layers.map(layerTar));
  const gz = diffs.map((d) => gzipSync(d));
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: diffs.map((d) => digestOf(d)) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length },
      layers: gz.map((g) => ({
        mediaType: MediaType.ociLayerGzip,
        digest: digestOf(g),
        size: g.length,
      })),
    }),
  );
  for (const blob of [config, ...gz, manifest]) await store.writeBlob(digestOf(blob), blob);
  const descriptor: Descriptor = {
    mediaType: MediaType.ociManifest,
    digest: digestOf(manifest),
    size: manifest.length,
  };
  await store.recordImage(reference, descriptor, descriptor.digest);
  return {
    manifest,
    manifestDigest: descriptor.digest,
    config,
    configDigest: digestOf(config),
    layers: gz,
    diffs,
  };
}

export interface TarEntry {
  name: string;
  body?: Buffer;
  type?: "file" | "directory" | "symlink" | "link" | "fifo";
  linkname?: string;
}

/** A tar archive of these entries, written by tar-stream (which writes names as given, even unsafe ones). */
export async function packed(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  const reading = (async () => {
    for await (const c of pack) out.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const header = { name: e.name, type: e.type ?? "file", mtime: new Date(0) } as const;
      if (e.linkname !== undefined) pack.entry({ ...header, linkname: e.linkname }, cb);
      else if ((e.type ?? "file") === "file") pack.entry(header, e.body ?? Buffer.alloc(0), cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await reading;
  return Buffer.concat(out);
}

/** An archive whose one entry's header declares `size` bytes, of which only `body` follows. */
export async function cutShort(name: string, size: number, body: Buffer): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  let length = 0;
  const arrived = new Promise<void>((resolve) => {
    pack.on("data", (c: unknown) => {
      out.push(c as Buffer);
      length += (c as Buffer).length;
      if (length >= 512 + body.length) resolve();
    });
  });
  pack.entry({ name, size, mtime: new Date(0) }).write(body);
  await arrived;
  return Buffer.concat(out);
}

export async function load(
  store: Store,
  archive: Buffer,
): Promise<{ summary: LoadSummary; events: LoadEvent[] }> {
  const events: LoadEvent[] = [];
  const summary = await loadArchive({
    store,
    input: Readable.from([archive]),
    source: "test.tar",
    normalizeName: (text) => (text.includes("/") ? text : `${HUB}/library/${text}`),
    onEvent: (e) => events.push(e),
  });
  return { summary, events };
}

export function readIndex(store: Store): Promise<string> {
  return readFile(join(store.root, "index.json"), "utf8");
}
