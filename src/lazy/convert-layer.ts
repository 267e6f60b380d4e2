import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { FerryError } from "../observe/index.ts";
import { type Descriptor, MediaType } from "../oci/index.ts";
import { tempPathFor } from "../fsx/index.ts";
import { orderEntries } from "./convert-order.ts";
import { SpoolReader } from "./convert-spool.ts";
import { readTarEntries, type TarEntry } from "./convert-tar.ts";
import {
  EstargzWriter,
  type EntryMeta,
  NO_PREFETCH_LANDMARK,
  PREFETCH_LANDMARK,
} from "./estargz-writer.ts";

const GZIP_LAYERS: ReadonlySet<string> = new Set([
  MediaType.ociLayerGzip,
  MediaType.dockerLayerGzip,
  MediaType.ociLayerNondistributableGzip,
  MediaType.dockerLayerForeignGzip,
]);
const WRITE_BATCH = 1024 * 1024;
const TAR_LAYERS: ReadonlySet<string> = new Set([
  MediaType.ociLayer,
  "application/vnd.docker.image.rootfs.diff.tar",
]);

export interface ConvertLayerOptions {
  /** The layer's compressed bytes from a blob source's whole open (verified there against the descriptor, as they are read). */
  readonly body: Readable;
  readonly descriptor: Descriptor;
  /** The config's diff_id for this layer: the uncompressed source is checked against it. */
  readonly diffId: string | undefined;
  /** Directory for the spooled tar and the output (same filesystem as the store). */
  readonly workDir: string;
  readonly prioritize: readonly string[];
  readonly chunkSize?: number | undefined;
  readonly level?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A converted layer in a local file, hashed as it was written. */
export interface ConvertedLayer {
  /** The eStargz blob; the caller moves or removes it. */
  readonly path: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
  readonly tocDigest: string;
  readonly uncompressedSize: number;
  readonly entries: number;
  /** Prioritized paths this layer holds. */
  readonly prioritized: readonly string[];
}

/** Can `convertLayer` read this media type? */
export function isConvertibleLayer(mediaType: string): boolean {
  return (
    GZIP_LAYERS.has(mediaType) || TAR_LAYERS.has(mediaType) || mediaType === MediaType.ociLayerZstd
  );
}

/**
 * Rewrites one layer as eStargz. The source is verified while it is
 * decompressed into a spooled tar (the compressed digest and size against the
 * descriptor, the uncompressed digest against the diff_id); only then are its
 * entries read back by position, reordered, and written as eStargz, hashed as
 * they are written. Memory holds entry metadata and a few chunks, never the layer.
 */
export async function convertLayer(options: ConvertLayerOptions): Promise<ConvertedLayer> {
  const { descriptor: desc } = options;
  const spool = tempPathFor(join(options.workDir, "convert-spool"));
  const out = tempPathFor(join(options.workDir, "convert-layer"));
  let handedOver = false;
  try {
    const spooledSize = await spoolLayer(options, spool);
    const input = await open(spool, "r");
    try {
      const spooled = new SpoolReader(input, spooledSize);
      const entries: TarEntry[] = [];
      for await (const e of readTarEntries(spooled, desc.digest)) entries.push(e);
      const order = orderEntries(entries, options.prioritize);
      const result = await writeLayer(spooled, order, out, options);
      handedOver = true;
      return { ...result, path: out, prioritized: order.found };
    } finally {
      await input.close();
    }
  } finally {
    await rm(spool, { force: true });
    if (!handedOver) await rm(out, { force: true });
  }
}

async function spoolLayer(options: ConvertLayerOptions, path: string): Promise<number> {
  const desc = options.descriptor;
  const diff = createHash("sha256");
  let spooled = 0;
  const count = through((b) => {
    diff.update(b);
    spooled += b.length;
  });
  const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [options.body];
  if (GZIP_LAYERS.has(desc.mediaType)) stages.push(createGunzip());
  else if (desc.mediaType === MediaType.ociLayerZstd) stages.push(createZstdDecompress());
  else if (!TAR_LAYERS.has(desc.mediaType))
    throw new FerryError(
      "FERRY_UNSUPPORTED_MANIFEST",
      `layer ${desc.digest} has media type ${desc.mediaType}, which ferry cannot convert`,
      {
        hint: "only tar layers (uncompressed, gzip or zstd) can be rewritten as eStargz",
        fields: { digest: desc.digest, mediaType: desc.mediaType },
      },
    );
  stages.push(count, createWriteStream(path, { flags: "wx" }));
  try {
    await pipeline(stages, options.signal === undefined ? {} : { signal: options.signal });
  } catch (err) {
    if (err instanceof FerryError) throw err;
    if (
      (err as { code?: string }).code?.startsWith("Z_") ||
      (err as { code?: string }).code?.startsWith("ERR_ZSTD")
    )
      throw new FerryError(
        "FERRY_ARCHIVE_INVALID",
        `layer ${desc.digest} does not decompress: ${String(err)}`,
        {
          fields: { digest: desc.digest },
          cause: err,
        },
      );
    throw err;
  }
  const diffId = `sha256:${diff.digest("hex")}`;
  if (options.diffId !== undefined && options.diffId !== diffId)
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `layer ${desc.digest} uncompresses to ${diffId}, but the image config's diff_id is ${options.diffId}`,
      {
        hint: "the image is inconsistent (its config names different layer contents); it was not converted",
        fields: { digest: desc.digest, expected: options.diffId, actual: diffId },
      },
    );
  return spooled;
}

async function writeLayer(
  input: SpoolReader,
  order: ReturnType<typeof orderEntries>,
  path: string,
  options: ConvertLayerOptions,
): Promise<Omit<ConvertedLayer, "path" | "prioritized">> {
  const output = await open(path, "wx", 0o644);
  const blob = createHash("sha256");
  // Members of small files are small: they are written in batches, not one write each.
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    if (batched === 0) return;
    const parts = batch;
    batch = [];
    batched = 0;
    await output.writev(parts);
  };
  try {
    const writer = new EstargzWriter(
      async (bytes) => {
        blob.update(bytes);
        batch.push(bytes);
        batched += bytes.length;
        if (batched >= WRITE_BATCH) await flush();
      },
      { chunkSize: options.chunkSize, level: options.level },
    );
    const add = async (e: TarEntry) => {
      options.signal?.throwIfAborted();
      const header = await readExactly(input, e.start, e.dataStart);
      const read = (start: number, end: number) =>
        readExactly(input, e.dataStart + start, e.dataStart + end);
      await writer.add(metaOf(e), header, e.type === "reg" ? read : undefined);
    };
    for (const e of order.first) await add(e);
    await writer.addLandmark(order.first.length > 0 ? PREFETCH_LANDMARK : NO_PREFETCH_LANDMARK);
    for (const e of order.rest) await add(e);
    const result = await writer.finish();
    await flush();
    await output.sync();
    return {
      digest: `sha256:${blob.digest("hex")}`,
      size: result.size,
      diffId: result.diffId,
      tocDigest: result.tocDigest,
      uncompressedSize: result.uncompressedSize,
      entries: result.entries,
    };
  } finally {
    await output.close();
  }
}

function metaOf(e: TarEntry): EntryMeta {
  return {
    path: e.path,
    type: e.type,
    size: e.size,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    uname: e.uname,
    gname: e.gname,
    mtime: e.mtime,
    linkName: e.linkName,
    devMajor: e.devMajor,
    devMinor: e.devMinor,
    xattrs: e.xattrs,
  };
}

async function readExactly(file: SpoolReader, start: number, end: number): Promise<Buffer> {
  const bytes = await file.read(start, end - start);
  if (bytes.length !== end - start)
    throw new FerryError(
      "FERRY_STORE_IO",
      `the spooled layer ended at byte ${start + bytes.length}`,
    );
  return bytes;
}

function through(see: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        see(chunk);
        callback(null, chunk);
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}
