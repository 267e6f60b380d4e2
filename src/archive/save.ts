/**
 * `ferry save`: stored images → one tar that is an OCI image layout and a `docker load`
 * archive. Blobs stream from the store (re-verified on the way), each written once.
 */
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { digestOf } from "../digest/index.ts";
import { writeStreamAtomic } from "../fsx/index.ts";
import { FerryError } from "../observe/index.ts";
import {
  type Descriptor,
  type ImageManifest,
  MediaType,
  parseManifest,
  parsePlatformObject,
} from "../oci/index.ts";
import { type ImageRecord, type Store, StoreSource } from "../store/index.ts";
import { blobPathOf } from "./entry-path.ts";
import { writeError } from "./errors.ts";
import { planArchive, type SavedImage } from "./save-plan.ts";

export interface SaveImage {
  readonly record: ImageRecord;
  /** Docker's familiar "repo:tag" names for manifest.json; empty when known by digest only. */
  readonly repoTags: readonly string[];
}

export interface SaveOptions {
  store: Store;
  images: readonly SaveImage[];
  onEvent?(event: { type: "blob"; digest: string; size: number }): void;
  signal?: AbortSignal;
}

export interface SaveSummary {
  images: number;
  blobs: number;
  bytes: number;
  seconds: number;
}

/** Entries have a fixed mtime and owner, so saving the same images twice gives the same bytes. */
const ENTRY = { mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "" };
type EntryHeader = Partial<tar.Header> & { name: string };
/** A bigger "config" belongs to an artifact, not a container image. */
const CONFIG_MAX_BYTES = 16 << 20;
const LOADABLE_CONFIGS: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];

/** The archive at `path`, whole or not at all (a failed or interrupted save leaves an older file as it was). */
export function saveArchiveFile(path: string, options: SaveOptions): Promise<SaveSummary> {
  return writeStreamAtomic(path, (out) => saveArchive(out, options)).catch((err: unknown) => {
    throw writeError(err, path);
  });
}

export async function saveArchive(output: Writable, options: SaveOptions): Promise<SaveSummary> {
  const started = performance.now();
  const images: SavedImage[] = [];
  for (const image of options.images) images.push(await savedImage(options.store, image));
  const plan = planArchive(images);

  const pack = tar.pack();
  const writing = pipeline(Readable.from(pack), output, { signal: options.signal, end: true });
  // If the destination fails (disk full, closed pipe), stop adding entries at once.
  const failed = writing.then(
    () => new Promise<never>(() => {}),
    (err: unknown) => Promise.reject(interrupted(err)),
  );
  failed.catch(() => undefined);
  const step = <T>(p: Promise<T>) => Promise.race([p, failed]);
  let bytes = 0;
  try {
    for (const file of plan.files) {
      await step(entry(pack, { ...ENTRY, name: file.name, size: file.bytes.length }, file.bytes));
    }
    await step(entry(pack, { ...ENTRY, name: "blobs/", type: "directory", mode: 0o755 }));
    await step(entry(pack, { ...ENTRY, name: "blobs/sha256/", type: "directory", mode: 0o755 }));
    for (const blob of plan.blobs) {
      await step(streamBlob(pack, options.store, blob));
      bytes += blob.size;
      options.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size });
    }
    pack.finalize();
    await step(writing);
  } catch (err) {
    pack.destroy();
    await writing.catch(() => undefined);
    throw interrupted(err);
  }
  return {
    images: images.length,
    blobs: plan.blobs.length,
    bytes,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}

async function savedImage(store: Store, image: SaveImage): Promise<SavedImage> {
  const { record } = image;
  const manifest = await readManifest(store, record);
  for (const d of [manifest.config, ...manifest.layers]) {
    if (!(await store.hasBlob(d.digest, d.size))) throw missingBlob(record, d);
  }
  const config = await readConfig(store, manifest.config);
  let descriptor = record.descriptor;
  if (descriptor.platform === undefined && config.platform !== undefined) {
    descriptor = { ...descriptor, platform: config.platform };
  }
  return {
    reference: record.reference,
    descriptor,
    sourceDigest: record.sourceDigest,
    manifest,
    repoTags: image.repoTags,
    dockerLoadable: LOADABLE_CONFIGS.includes(manifest.config.mediaType) && config.isImage,
  };
}

async function readManifest(store: Store, record: ImageRecord): Promise<ImageManifest> {
  const d = record.descriptor;
  if (!(await store.hasBlob(d.digest, d.size))) throw missingBlob(record, d);
  const bytes = await store.readBlob(d.digest);
  if (digestOf(bytes) !== d.digest) throw corruptBlob(d.digest, `${record.reference}'s manifest`);
  const parsed = parseManifest(bytes, d.mediaType);
  if (parsed.kind !== "image") {
    throw new FerryError(
      "FERRY_STORE_CORRUPT",
      `${record.reference} points at an index, not an image manifest`,
    );
  }
  return parsed.manifest;
}

/** The platform a config names, and whether it is a container image config at all. */
async function readConfig(store: Store, d: Descriptor) {
  let json: Record<string, unknown> | null = null;
  if (d.size > CONFIG_MAX_BYTES) return { platform: undefined, isImage: false };
  try {
    json = JSON.parse((await store.readBlob(d.digest)).toString("utf8")) as Record<
      string,
      unknown
    > | null;
  } catch {
    json = null;
  }
  let platform: SavedImage["descriptor"]["platform"];
  try {
    platform = parsePlatformObject(json);
  } catch {
    platform = undefined;
  }
  const rootfs = json?.rootfs as { diff_ids?: unknown } | undefined;
  return { platform, isImage: Array.isArray(rootfs?.diff_ids) };
}

function entry(pack: tar.Pack, header: EntryHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    const sink = body === undefined ? pack.entry(header, done) : pack.entry(header, body, done);
    sink.on("error", () => {}); // reported through `done`
  });
}

async function streamBlob(pack: tar.Pack, store: Store, blob: Descriptor): Promise<void> {
  const { promise: finished, resolve, reject } = Promise.withResolvers<void>();
  finished.catch(() => {}); // may fail while we wait for drain; awaited below
  const header = { ...ENTRY, name: blobPathOf(blob.digest), size: blob.size };
  const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
  sink.on("error", () => {}); // reported through the callback
  try {
    // Verified as it is read: the stream fails instead of ending on bytes that are not the blob.
    for await (const chunk of await new StoreSource(store).open(blob)) {
      if (!sink.write(chunk)) await new Promise<void>((ok) => sink.once("drain", () => ok()));
    }
  } catch (err) {
    sink.destroy();
    await finished.catch(() => undefined);
    if (err instanceof FerryError && /MISMATCH/.test(err.code))
      throw corruptBlob(blob.digest, "a blob");
    throw err;
  }
  sink.end(undefined);
  await finished;
}

function missingBlob(record: ImageRecord, d: Descriptor): FerryError {
  return new FerryError(
    "FERRY_STORE_CORRUPT",
    `blob ${d.digest} of ${record.reference} is missing from the store (or has the wrong size)`,
    {
      hint: `pull the image again: \`ferry pull ${record.reference}\``,
      fields: { digest: d.digest },
    },
  );
}

function corruptBlob(digest: string, what: string): FerryError {
  return new FerryError(
    "FERRY_STORE_CORRUPT",
    `${what} in the store (${digest}) does not match its digest`,
    {
      hint: "the file was damaged on disk; remove the image and pull it again",
      fields: { digest },
    },
  );
}

function interrupted(err: unknown): unknown {
  if ((err as { name?: string } | null)?.name === "AbortError") {
    return new FerryError("FERRY_INTERRUPTED", "interrupted; the archive was not written");
  }
  if ((err as { code?: string } | null)?.code === "EPIPE") {
    return new FerryError(
      "FERRY_OUTPUT_CLOSED",
      "the archive's reader closed the pipe before the end",
      {
        hint: "the program reading ferry's output stopped early; see its own error",
        cause: err,
      },
    );
  }
  return err;
}
