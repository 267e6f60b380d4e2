import { posix } from "node:path";
import type { Readable, Transform } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import tar from "tar-stream";
import { FerryError } from "../observe/index.ts";
import { type Descriptor, MediaType } from "../oci/index.ts";
import { type RegistryClient, RegistrySource, type Repository } from "../registry/index.ts";
import { invalidLayer } from "./errors.ts";
import { RangeReader } from "./fetch.ts";
import { FOOTER_SIZE, parseFooter } from "./footer.ts";
import {
  cleanPath,
  type EntryType,
  extractTocJson,
  MAX_TOC_BYTES,
  parseToc,
  TOC_DIGEST_ANNOTATION,
  type Toc,
  type TocEntry,
  verifyTocDigest,
} from "./toc.ts";

const GZIP_TYPES: ReadonlySet<string> = new Set([
  MediaType.ociLayerGzip,
  MediaType.dockerLayerGzip,
  MediaType.ociLayerNondistributableGzip,
  MediaType.dockerLayerForeignGzip,
]);

/** One layer of an image: eStargz (a TOC, read by ranges) or plain (read by streaming). */
export interface Layer {
  readonly descriptor: Descriptor;
  readonly ranges: RangeReader;
  /** The TOC's entries when the layer is eStargz; undefined for a plain layer. */
  readonly toc: readonly TocEntry[] | undefined;
}

/** Reads a layer's footer and, when it is eStargz, its verified TOC. */
export async function openLayer(
  registry: RegistryClient,
  repository: Repository,
  descriptor: Descriptor,
  signal?: AbortSignal,
): Promise<Layer> {
  const ranges = new RangeReader({
    registry,
    repository,
    digest: descriptor.digest,
    size: descriptor.size,
    signal,
  });
  const layer = { descriptor, ranges, toc: undefined };
  const annotated = descriptor.annotations?.[TOC_DIGEST_ANNOTATION];
  if (!GZIP_TYPES.has(descriptor.mediaType) || descriptor.size < FOOTER_SIZE) {
    if (annotated !== undefined)
      throw invalidLayer(
        descriptor.digest,
        `has a TOC digest annotation but is not a gzip layer (${descriptor.mediaType})`,
      );
    return layer;
  }
  const read = await readToc(ranges, descriptor);
  return read === undefined ? layer : { descriptor, ranges, toc: read.toc.entries };
}

/**
 * Reads the eStargz footer of a layer (at least FOOTER_SIZE bytes long) and the TOC it
 * points to, bounded and verified against the layer's TOC-digest annotation; undefined
 * when the layer has no footer (refused when it is annotated as eStargz).
 */
export async function readToc(
  ranges: RangeReader,
  descriptor: Descriptor,
): Promise<{ json: Buffer; toc: Toc } | undefined> {
  const annotated = descriptor.annotations?.[TOC_DIGEST_ANNOTATION];
  const footer = parseFooter(await ranges.read(descriptor.size - FOOTER_SIZE, descriptor.size));
  if (footer === undefined) {
    if (annotated !== undefined)
      throw invalidLayer(descriptor.digest, "has a TOC digest annotation but no eStargz footer");
    return undefined;
  }
  const tocEnd = descriptor.size - footer.size;
  if (!(footer.tocOffset < tocEnd))
    throw invalidLayer(
      descriptor.digest,
      `the footer puts the TOC at ${footer.tocOffset}, outside the ${descriptor.size}-byte blob`,
    );
  if (tocEnd - footer.tocOffset > MAX_TOC_BYTES)
    throw invalidLayer(
      descriptor.digest,
      `the TOC is ${tocEnd - footer.tocOffset} bytes compressed, more than ${MAX_TOC_BYTES}`,
    );
  const json = extractTocJson(await ranges.read(footer.tocOffset, tocEnd), descriptor.digest);
  verifyTocDigest(json, annotated, descriptor.digest);
  const toc = parseToc(json, {
    layer: descriptor.digest,
    tocOffset: footer.tocOffset,
    blobSize: descriptor.size,
  });
  return { json, toc };
}

/** A whole-layer stream, uncompressed, with the compressed bytes counted on `ranges`. */
function uncompressed(layer: Layer, body: Readable): Readable {
  body.on("data", (b: Buffer) => {
    layer.ranges.fetched += b.length;
  });
  const type = layer.descriptor.mediaType;
  // pipe() does not pass the body's failure on: without this a cut connection left the
  // decompressor waiting for more, and the scan waiting for it.
  const through = (d: Transform) => {
    body.on("error", (err) => d.destroy(err));
    return body.pipe(d);
  };
  if (GZIP_TYPES.has(type)) return through(createGunzip());
  if (type === MediaType.ociLayerZstd) return through(createZstdDecompress());
  if (type === MediaType.ociLayer || type === "application/vnd.docker.image.rootfs.diff.tar")
    return body;
  throw new FerryError(
    "FERRY_UNSUPPORTED_MANIFEST",
    `layer ${layer.descriptor.digest} has media type ${type}, which lazy reads do not understand`,
  );
}

const TAR_TYPES: Partial<Record<string, EntryType>> = {
  file: "reg",
  "contiguous-file": "reg",
  directory: "dir",
  symlink: "symlink",
  link: "hardlink",
  "character-device": "char",
  "block-device": "block",
  fifo: "fifo",
};

/**
 * Streams a plain layer through its decompressor and tar. `visit` sees each
 * entry (with its content when `wantContent` says so) and returns true to stop early.
 */
export async function scanLayer(
  registry: RegistryClient,
  repository: Repository,
  layer: Layer,
  visit: (entry: TocEntry, content: Buffer | undefined) => boolean,
  wantContent: (path: string) => boolean = () => false,
  signal?: AbortSignal,
): Promise<void> {
  const body = await new RegistrySource(registry, repository).open(
    layer.descriptor,
    undefined,
    signal,
  );
  const stream = uncompressed(layer, body);
  const extract = tar.extract();
  let stopped = false;
  const finished = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, body, next) => {
      const type = TAR_TYPES[header.type ?? "file"];
      const path = cleanPath(header.name, layer.descriptor.digest);
      if (type === undefined) {
        body.resume();
        body.on("end", next);
        return;
      }
      const entry: TocEntry = {
        path,
        type,
        size: type === "reg" ? (header.size ?? 0) : 0,
        mode: header.mode ?? 0,
        uid: header.uid ?? 0,
        gid: header.gid ?? 0,
        linkName:
          type === "hardlink" && header.linkname
            ? cleanPath(header.linkname, layer.descriptor.digest)
            : (header.linkname ?? undefined),
        digest: undefined,
        chunks: [],
      };
      const parts: Buffer[] = [];
      const keep = type === "reg" && wantContent(path);
      body.on("data", (b: unknown) => {
        if (keep) parts.push(b as Buffer);
      });
      body.on("end", () => {
        if (visit(entry, keep ? Buffer.concat(parts) : undefined)) {
          stopped = true;
          body.destroy();
          stream.destroy();
          extract.destroy();
          resolve();
          return;
        }
        next();
      });
    });
    extract.on("finish", resolve);
    extract.on("error", (err) => (stopped ? resolve() : reject(err)));
    stream.on("error", (err) => (stopped ? resolve() : reject(err)));
  });
  stream.pipe(extract);
  await finished;
}

/** The name a whiteout hides, or "opaque" for a directory's opaque marker; undefined if not a whiteout. */
export function whiteoutTarget(
  path: string,
): { dir: string; hides: string | "opaque" } | undefined {
  const base = posix.basename(path);
  if (!base.startsWith(".wh.")) return undefined;
  const dir = posix.dirname(path) === "." ? "" : posix.dirname(path);
  if (base === ".wh..wh..opq") return { dir, hides: "opaque" };
  const name = base.slice(".wh.".length);
  return { dir, hides: dir === "" ? name : `${dir}/${name}` };
}
