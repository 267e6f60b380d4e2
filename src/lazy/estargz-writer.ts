import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { gzip as gzipCallback, gzipSync } from "node:zlib";
import { digestOf } from "../digest/index.ts";
import { END_OF_ARCHIVE, padding, ustarHeader } from "./convert-tar.ts";
import { FOOTER_SIZE } from "./footer.ts";
import { type EntryType, TOC_NAME } from "./toc.ts";

const gzip = promisify(gzipCallback);

/** stargz-snapshotter's default: files larger than this are split into chunks of this size. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
export const PREFETCH_LANDMARK = ".prefetch.landmark";
export const NO_PREFETCH_LANDMARK = ".no.prefetch.landmark";
/** The landmark file's one byte of content, as the format defines it. */
const LANDMARK_CONTENT = Buffer.from([0x0f]);
/** Members compressing at once on libuv's thread pool. */
const IN_FLIGHT = 3;
const SYNC_GZIP_BYTES = 64 * 1024;

/** One `entries` item of stargz.index.json, in the format's field names. */
export interface TocJsonEntry {
  name: string;
  type: EntryType | "chunk";
  size?: number;
  modtime?: string;
  linkName?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  userName?: string;
  groupName?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, string>;
  digest?: string;
  offset?: number;
  chunkOffset?: number;
  chunkSize?: number;
  chunkDigest?: string;
}

/** What the TOC says about an entry apart from where its content lies. */
export interface EntryMeta {
  /** Clean path ("etc/passwd"; the root is "" and written "./"). */
  readonly path: string;
  readonly type: EntryType;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly uname?: string | undefined;
  readonly gname?: string | undefined;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly linkName?: string | undefined;
  readonly devMajor?: number | undefined;
  readonly devMinor?: number | undefined;
  /** Values base64. */
  readonly xattrs?: Readonly<Record<string, string>> | undefined;
}

/** Bytes [start, end) of an entry's content. */
export type ReadContent = (start: number, end: number) => Promise<Buffer>;

export interface EstargzResult {
  /** sha256 of the TOC JSON: the layer's toc.digest annotation. */
  readonly tocDigest: string;
  /** sha256 of the uncompressed layer (the config's diff_id). */
  readonly diffId: string;
  /** Bytes of the uncompressed layer (the uncompressed-size annotation). */
  readonly uncompressedSize: number;
  /** Bytes of the compressed layer, footer included. */
  readonly size: number;
  readonly tocOffset: number;
  readonly entries: number;
}

interface Member {
  /** Members are numbered in the order they are cut. */
  readonly index: number;
  readonly compressed: Promise<Buffer>;
}

/**
 * Writes an eStargz layer: tar entries as a series of gzip members, every
 * chunk of a regular file (at most `chunkSize` bytes) starting a member of its
 * own, then the TOC's member and the footer. Headers are copied as given, so
 * the uncompressed layer is the source tar with its entries in the new order.
 * Compressed bytes go to `sink` in order; the uncompressed stream is hashed
 * for the diff_id. Only the TOC and the members being compressed are in memory.
 */
export class EstargzWriter {
  readonly #sink: (bytes: Buffer) => Promise<void>;
  readonly #chunkSize: number;
  readonly #level: number;
  readonly #diff = createHash("sha256");
  #uncompressed = 0;
  #written = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #queue: Member[] = [];
  #cut = 0;
  /** Where each member starts in the blob, by index, once written. */
  readonly #offsets: number[] = [];
  /** TOC entries with the index of the member their content starts, resolved to offsets at the end. */
  readonly #entries: Array<{ json: TocJsonEntry; member: number | undefined }> = [];
  #finished = false;

  constructor(
    sink: (bytes: Buffer) => Promise<void>,
    options: { chunkSize?: number | undefined; level?: number | undefined } = {},
  ) {
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
      throw new RangeError(`chunk size must be a positive integer, got ${chunkSize}`);
    this.#sink = sink;
    this.#chunkSize = chunkSize;
    this.#level = options.level ?? 6;
  }

  /**
   * Appends one entry: `header` is its tar header blocks (extension headers
   * included), `read` gives a regular file's content. The header joins the
   * member being built; each chunk of content starts a new one.
   */
  async add(meta: EntryMeta, header: Buffer, read?: ReadContent): Promise<void> {
    if (this.#finished) throw new Error("the eStargz writer is finished");
    await this.#append(header);
    const json = tocEntry(meta);
    if (meta.type !== "reg" || meta.size === 0) {
      if (meta.type === "reg") json.digest = digestOf(Buffer.alloc(0));
      this.#entries.push({ json, member: undefined });
      return;
    }
    if (read === undefined) throw new Error(`no content for ${meta.path}`);
    const whole = createHash("sha256");
    let entry = json;
    for (let at = 0; at < meta.size; ) {
      const length = Math.min(this.#chunkSize, meta.size - at);
      const member = await this.#closeMember();
      const bytes = await read(at, at + length);
      if (bytes.length !== length)
        throw new Error(`${meta.path}: read ${bytes.length} of ${length} content bytes`);
      whole.update(bytes);
      entry.chunkOffset = at;
      // As the reference writer does: chunkSize is given unless it is the file's last, shorter piece.
      if (length === this.#chunkSize) entry.chunkSize = length;
      entry.chunkDigest = digestOf(bytes);
      this.#entries.push({ json: entry, member });
      await this.#append(bytes);
      at += length;
      entry = { name: json.name, type: "chunk" };
    }
    json.digest = `sha256:${whole.digest("hex")}`;
    await this.#append(padding(meta.size));
  }

  /** Appends the landmark that ends the prioritized files (or says there are none). */
  async addLandmark(name: typeof PREFETCH_LANDMARK | typeof NO_PREFETCH_LANDMARK): Promise<void> {
    const meta: EntryMeta = {
      path: name,
      type: "reg",
      size: LANDMARK_CONTENT.length,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 0,
    };
    await this.add(meta, ustarHeader(name, LANDMARK_CONTENT.length), async (s, e) =>
      LANDMARK_CONTENT.subarray(s, e),
    );
  }

  /** Closes the last member, writes the TOC (its own member) and the footer. */
  async finish(): Promise<EstargzResult> {
    if (this.#finished) throw new Error("the eStargz writer is finished");
    this.#finished = true;
    await this.#closeMember();
    await this.#drain(0);
    const entries = this.#entries.map(({ json, member }) => {
      if (member !== undefined) json.offset = this.#offsets[member] as number;
      return json;
    });
    const tocJson = Buffer.from(JSON.stringify({ version: 1, entries }, null, "\t"));
    const tocTar = Buffer.concat([
      ustarHeader(TOC_NAME, tocJson.length, 0o644),
      tocJson,
      padding(tocJson.length),
      END_OF_ARCHIVE,
    ]);
    this.#hashUncompressed(tocTar);
    const tocOffset = this.#written;
    await this.#write(await gzip(tocTar, { level: this.#level }));
    await this.#write(footer(tocOffset));
    return {
      tocDigest: digestOf(tocJson),
      diffId: `sha256:${this.#diff.digest("hex")}`,
      uncompressedSize: this.#uncompressed,
      size: this.#written,
      tocOffset,
      entries: entries.length,
    };
  }

  async #append(bytes: Buffer): Promise<void> {
    if (bytes.length === 0) return;
    this.#hashUncompressed(bytes);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    // A member of headers alone may be cut anywhere; this bounds memory for layers of many small entries.
    if (this.#pendingBytes >= this.#chunkSize + 64 * 1024) await this.#closeMember();
  }

  #hashUncompressed(bytes: Buffer): void {
    this.#diff.update(bytes);
    this.#uncompressed += bytes.length;
  }

  /** Ends the member being built (if any); returns the index of the member that starts next. */
  async #closeMember(): Promise<number> {
    if (this.#pendingBytes > 0) {
      const data =
        this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
      this.#pending = [];
      this.#pendingBytes = 0;
      // Small members compress in place: a trip to the thread pool costs more than they do.
      const compressed =
        data.length < SYNC_GZIP_BYTES
          ? Promise.resolve(gzipSync(data, { level: this.#level }))
          : gzip(data, { level: this.#level });
      compressed.catch(() => {}); // awaited, in order, by #drain
      this.#queue.push({ index: this.#cut++, compressed });
      await this.#drain(IN_FLIGHT - 1);
    }
    return this.#cut;
  }

  /** Writes compressed members in order until at most `keep` are in flight. */
  async #drain(keep: number): Promise<void> {
    while (this.#queue.length > keep) {
      const member = this.#queue.shift() as Member;
      const bytes = await member.compressed;
      this.#offsets[member.index] = this.#written;
      await this.#write(bytes);
    }
  }

  async #write(bytes: Buffer): Promise<void> {
    await this.#sink(bytes);
    this.#written += bytes.length;
  }
}

function tocEntry(meta: EntryMeta): TocJsonEntry {
  const json: TocJsonEntry = { name: meta.path === "" ? "./" : meta.path, type: meta.type };
  if (meta.type === "reg") json.size = meta.size;
  if (meta.mtime > 0)
    json.modtime = new Date(meta.mtime * 1000).toISOString().replace(/\.000Z$/, "Z");
  if (meta.linkName !== undefined) json.linkName = meta.linkName;
  json.mode = meta.mode;
  json.uid = meta.uid;
  json.gid = meta.gid;
  if (meta.uname) json.userName = meta.uname;
  if (meta.gname) json.groupName = meta.gname;
  if (meta.type === "char" || meta.type === "block") {
    json.devMajor = meta.devMajor ?? 0;
    json.devMinor = meta.devMinor ?? 0;
  }
  if (meta.xattrs !== undefined) json.xattrs = { ...meta.xattrs };
  return json;
}

/**
 * The 51-byte eStargz footer: an empty gzip member whose extra field holds the
 * subfield "SG" with "%016x" of the TOC's offset followed by "STARGZ".
 */
export function footer(tocOffset: number): Buffer {
  const payload = `${tocOffset.toString(16).padStart(16, "0")}STARGZ`;
  const out = Buffer.alloc(FOOTER_SIZE);
  out.set([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff], 0); // magic, deflate, FEXTRA, no mtime, unknown OS
  out.writeUInt16LE(4 + payload.length, 10); // XLEN
  out.write("SG", 12, "latin1");
  out.writeUInt16LE(payload.length, 14);
  out.write(payload, 16, "latin1");
  // An empty final stored block, then CRC32 and ISIZE of nothing.
  out.set([0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], 38);
  return out;
}
