import { posix } from "node:path";
import { gunzipSync } from "node:zlib";
import { digestOf } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import { invalidLayer } from "./errors.ts";

export const TOC_NAME = "stargz.index.json";
/** Layer annotation: sha256 of the uncompressed TOC JSON. */
export const TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest";
/** Entries the converter adds to mark where prefetching ends; not files of the image. */
export const LANDMARKS: ReadonlySet<string> = new Set([
  ".prefetch.landmark",
  ".no.prefetch.landmark",
]);

/** Upper bound of an uncompressed TOC: it is held in memory. */
export const MAX_TOC_BYTES = 64 * 1024 * 1024;
/** Upper bound of one chunk's uncompressed bytes: a chunk is held in memory to verify it. */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/**
 * Upper bound of one member's compressed span [offset, end): a chunk of at most
 * MAX_CHUNK_BYTES (plus an innerOffset as large) never compresses to more than this, and a
 * reader may hold a span in memory. A wider span means a TOC lying about where members start.
 */
export const MAX_MEMBER_SPAN_BYTES = 2 * MAX_CHUNK_BYTES + 1024 * 1024;
/** Upper bound of a file's size: beyond this a TOC is lying. */
export const MAX_FILE_BYTES = 2 ** 40;

export type EntryType = "dir" | "reg" | "symlink" | "hardlink" | "char" | "block" | "fifo";
const ENTRY_TYPES: ReadonlySet<string> = new Set([
  "dir",
  "reg",
  "symlink",
  "hardlink",
  "char",
  "block",
  "fifo",
]);

/** One gzip member holding a piece of a regular file. */
export interface Chunk {
  /** Where the member starts in the blob. */
  readonly offset: number;
  /** Where the next member starts (or the TOC): the member lies in [offset, end). */
  readonly end: number;
  /** Uncompressed bytes to skip at the start of the member (small files sharing one member). */
  readonly innerOffset: number;
  /** Where the piece starts in the file. */
  readonly chunkOffset: number;
  readonly size: number;
  /** sha256 of the uncompressed piece. */
  readonly digest: string;
}

export interface TocEntry {
  /** Clean, relative, no "..": "etc/passwd"; the root is "". */
  readonly path: string;
  readonly type: EntryType;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Target of a symlink (as written) or hardlink (a clean path). */
  readonly linkName: string | undefined;
  /** sha256 of the whole file, when the TOC gives it. */
  readonly digest: string | undefined;
  /** Pieces of a regular file, in file order, covering [0, size) exactly. */
  readonly chunks: readonly Chunk[];
}

/** A directory a layer names only through its files (`etc/h0.txt`, no `etc/`), as an unpacker creates it. */
export const IMPLICIT_DIR: Omit<TocEntry, "path"> = {
  type: "dir",
  size: 0,
  mode: 0o755,
  uid: 0,
  gid: 0,
  linkName: undefined,
  digest: undefined,
  chunks: [],
};

export interface Toc {
  readonly entries: readonly TocEntry[];
}

/** Where the TOC is and how big the blob is: every offset must fall inside [0, tocOffset). */
export interface TocBounds {
  readonly layer: string;
  readonly tocOffset: number;
  readonly blobSize: number;
}

/** Gunzips the TOC's gzip member and takes `stargz.index.json` out of its tar. */
export function extractTocJson(member: Uint8Array, layer: string): Buffer {
  let tarBytes: Buffer;
  try {
    tarBytes = gunzipSync(member, { maxOutputLength: MAX_TOC_BYTES + 64 * 1024 });
  } catch (cause) {
    throw invalidLayer(
      layer,
      `the TOC is not valid gzip or larger than ${MAX_TOC_BYTES} bytes (${String(cause)})`,
    );
  }
  let at = 0;
  while (at + 512 <= tarBytes.length) {
    const header = tarBytes.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const name = cString(header.subarray(0, 100));
    const size = Number.parseInt(cString(header.subarray(124, 136)).trim() || "0", 8);
    if (!Number.isSafeInteger(size) || size < 0 || at + 512 + size > tarBytes.length)
      throw invalidLayer(layer, "the TOC's tar entry is truncated");
    if (name === TOC_NAME) return Buffer.from(tarBytes.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw invalidLayer(layer, `the TOC's tar has no ${TOC_NAME}`);
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString("utf8");
}

/** Refuses a TOC whose sha256 differs from the layer's annotation (or when there is none). */
export function verifyTocDigest(
  json: Uint8Array,
  expected: string | undefined,
  layer: string,
): void {
  if (expected === undefined) {
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `eStargz layer ${layer} has no ${TOC_DIGEST_ANNOTATION} annotation: its TOC cannot be verified`,
      {
        hint: "convert the image with a tool that records the TOC digest (e.g. `ctr-remote image convert --estargz --oci`)",
        fields: { layer },
      },
    );
  }
  const actual = digestOf(json);
  if (actual !== expected) {
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `TOC of eStargz layer ${layer} does not match its annotation ${expected} (got ${actual})`,
      {
        hint: "the registry or something between it and you served a different layer than the manifest names",
        fields: { layer, expected, actual },
      },
    );
  }
}

/** Cleans an entry name; undefined for the root. Throws on absolute or escaping names. */
export function cleanPath(name: string, layer: string): string {
  if (name.startsWith("/")) throw invalidLayer(layer, `entry "${name}" is an absolute path`);
  const clean = posix.normalize(name).replace(/\/+$/, "");
  if (clean === "." || clean === "") return "";
  if (clean === ".." || clean.startsWith("../"))
    throw invalidLayer(layer, `entry "${name}" escapes the root with ".."`);
  return clean.startsWith("./") ? clean.slice(2) : clean;
}

type Raw = Record<string, unknown>;

function num(raw: Raw, key: string, layer: string, name: string): number {
  const v = raw[key] ?? 0;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw invalidLayer(layer, `entry "${name}": ${key} is not a non-negative integer`);
  return v;
}

function str(raw: Raw, key: string): string | undefined {
  const v = raw[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

interface PendingChunk {
  offset: number;
  innerOffset: number;
  chunkOffset: number;
  size: number;
  digest: string;
}

/** Parses and validates TOC JSON into entries whose every offset and size can be trusted. */
export function parseToc(json: Uint8Array, bounds: TocBounds): Toc {
  const { layer } = bounds;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(json).toString("utf8"));
  } catch {
    throw invalidLayer(layer, "the TOC is not JSON");
  }
  const entriesRaw = (doc as Raw | null)?.["entries"];
  if (typeof doc !== "object" || doc === null || !Array.isArray(entriesRaw))
    throw invalidLayer(layer, "the TOC has no entries list");
  if (!(bounds.tocOffset < bounds.blobSize))
    throw invalidLayer(
      layer,
      `the footer puts the TOC at ${bounds.tocOffset}, outside the ${bounds.blobSize}-byte blob`,
    );

  const files: Array<{ base: Omit<TocEntry, "chunks">; chunks: PendingChunk[] }> = [];
  for (const item of entriesRaw) {
    if (typeof item !== "object" || item === null)
      throw invalidLayer(layer, "a TOC entry is not an object");
    const raw = item as Raw;
    const name = typeof raw["name"] === "string" ? raw["name"] : undefined;
    if (name === undefined) throw invalidLayer(layer, "a TOC entry has no name");
    const path = cleanPath(name, layer);
    const type = raw["type"];
    if (type === "chunk") {
      const owner = files[files.length - 1];
      if (owner === undefined || owner.base.type !== "reg" || owner.base.path !== path)
        throw invalidLayer(layer, `chunk of "${name}" does not follow its file`);
      owner.chunks.push(chunkOf(raw, owner.base.size, layer, name));
      continue;
    }
    if (typeof type !== "string" || !ENTRY_TYPES.has(type))
      throw invalidLayer(layer, `entry "${name}" has unknown type ${JSON.stringify(type)}`);
    const size = type === "reg" ? num(raw, "size", layer, name) : 0;
    if (size > MAX_FILE_BYTES)
      throw invalidLayer(layer, `entry "${name}" claims an absurd size of ${size} bytes`);
    const linkRaw = str(raw, "linkName");
    if ((type === "symlink" || type === "hardlink") && linkRaw === undefined)
      throw invalidLayer(layer, `${type} "${name}" has no linkName`);
    const base = {
      path,
      type: type as EntryType,
      size,
      mode: num(raw, "mode", layer, name),
      uid: num(raw, "uid", layer, name),
      gid: num(raw, "gid", layer, name),
      linkName: type === "hardlink" && linkRaw !== undefined ? cleanPath(linkRaw, layer) : linkRaw,
      digest: str(raw, "digest"),
    };
    const chunks: PendingChunk[] = [];
    if (type === "reg" && size > 0) chunks.push(chunkOf(raw, size, layer, name));
    files.push({ base, chunks });
  }
  // Each member is where exactly one piece starts (or one small file, by innerOffset).
  const starts = new Set<string>();
  const offsets: number[] = [];
  for (const f of files) {
    for (const c of f.chunks) {
      if (c.offset >= bounds.tocOffset)
        throw invalidLayer(
          layer,
          `chunk of "${f.base.path}" at offset ${c.offset} lies outside the blob's data (which ends at ${bounds.tocOffset})`,
        );
      const key = `${c.offset}+${c.innerOffset}`;
      if (starts.has(key))
        throw invalidLayer(layer, `chunks overlap at offset ${c.offset} ("${f.base.path}")`);
      starts.add(key);
      offsets.push(c.offset);
    }
  }
  const sorted = [...new Set(offsets)].sort((a, b) => a - b);
  const nextStart = (offset: number): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sorted[mid] as number) <= offset) lo = mid + 1;
      else hi = mid;
    }
    return sorted[lo] ?? bounds.tocOffset;
  };
  const entries: TocEntry[] = [];
  for (const f of files) {
    let covered = 0;
    const chunks: Chunk[] = [];
    for (const c of [...f.chunks].sort((a, b) => a.chunkOffset - b.chunkOffset)) {
      if (c.chunkOffset !== covered)
        throw invalidLayer(
          layer,
          `chunks of "${f.base.path}" overlap or leave a gap at byte ${Math.min(c.chunkOffset, covered)}`,
        );
      covered += c.size;
      const end = nextStart(c.offset);
      if (end - c.offset > MAX_MEMBER_SPAN_BYTES)
        throw invalidLayer(
          layer,
          `chunk of "${f.base.path}" at offset ${c.offset} spans ${end - c.offset} compressed bytes (at most ${MAX_MEMBER_SPAN_BYTES})`,
        );
      chunks.push({ ...c, end });
    }
    if (covered !== f.base.size)
      throw invalidLayer(
        layer,
        `chunks of "${f.base.path}" cover ${covered} bytes, not its size ${f.base.size}`,
      );
    entries.push({ ...f.base, chunks });
  }
  return { entries };
}

function chunkOf(raw: Raw, fileSize: number, layer: string, name: string): PendingChunk {
  const offset = num(raw, "offset", layer, name);
  const chunkOffset = num(raw, "chunkOffset", layer, name);
  const declared = num(raw, "chunkSize", layer, name);
  const size = declared === 0 ? fileSize - chunkOffset : declared;
  if (size <= 0 || chunkOffset + size > fileSize)
    throw invalidLayer(
      layer,
      `chunk of "${name}" at ${chunkOffset}+${declared} lies outside the file's ${fileSize} bytes`,
    );
  if (size > MAX_CHUNK_BYTES)
    throw invalidLayer(
      layer,
      `chunk of "${name}" claims an absurd size of ${size} bytes (at most ${MAX_CHUNK_BYTES})`,
    );
  const digest = str(raw, "chunkDigest");
  if (digest === undefined || !/^sha256:[0-9a-f]{64}$/.test(digest))
    throw invalidLayer(layer, `chunk of "${name}" has no sha256 chunkDigest to verify it by`);
  const innerOffset = num(raw, "innerOffset", layer, name);
  // A reader decompresses the member up to innerOffset + size: bound it like a chunk.
  if (innerOffset > MAX_CHUNK_BYTES)
    throw invalidLayer(
      layer,
      `chunk of "${name}" claims an absurd innerOffset of ${innerOffset} bytes (at most ${MAX_CHUNK_BYTES})`,
    );
  return { offset, innerOffset, chunkOffset, size, digest };
}
