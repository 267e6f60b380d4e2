import { FerryError } from "../observe/index.ts";
import type { SpoolReader } from "./convert-spool.ts";
import { cleanPath, type EntryType } from "./toc.ts";

// The tar side of conversion: entries of a spooled layer read by position (only
// their metadata is kept), and the few ustar headers the converter writes itself.

export const BLOCK = 512;
/** Upper bound of one PAX or GNU long-name record: it is held in memory. */
const MAX_EXTENSION_BYTES = 1024 * 1024;

/** One entry of a tar, by position: its header blocks are [start, dataStart), its content [dataStart, dataStart + size). */
export interface TarEntry {
  /** Clean path: no leading "./" or "/", no trailing "/"; the root is "". */
  readonly path: string;
  readonly type: EntryType;
  /** Content bytes that follow the header (regular files only). */
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly uname: string;
  readonly gname: string;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Symlink target as written; hardlink target as a clean path. */
  readonly linkName: string | undefined;
  readonly devMajor: number;
  readonly devMinor: number;
  /** Extended attributes (PAX SCHILY.xattr.*), values base64. */
  readonly xattrs: Readonly<Record<string, string>> | undefined;
  /** First block of the entry, extension headers (PAX, GNU long names) included. */
  readonly start: number;
  readonly dataStart: number;
}

const TYPES: Readonly<Record<string, EntryType>> = {
  "0": "reg",
  "\0": "reg",
  "7": "reg",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

export function invalidTar(layer: string, problem: string): FerryError {
  return new FerryError(
    "FERRY_ARCHIVE_INVALID",
    `layer ${layer} is not a tar ferry can convert: ${problem}`,
    {
      hint: "the layer's tar is malformed or uses a feature eStargz cannot hold (sparse files, global PAX headers)",
      fields: { layer },
    },
  );
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.toString("utf8", 0, end < 0 ? bytes.length : end);
}

/** A numeric header field: octal text, or base-256 when the high bit of its first byte is set. */
export function parseNumber(field: Buffer): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    let n = BigInt(first & 0x7f);
    for (let i = 1; i < field.length; i++) n = (n << 8n) | BigInt(field[i] ?? 0);
    return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(n);
  }
  const text = cString(field)
    .replace(/[ \0]+$/g, "")
    .trim();
  if (text === "") return 0;
  return /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : Number.NaN;
}

function checksumOk(block: Buffer): boolean {
  const stored = parseNumber(block.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** PAX records ("LEN key=value\n"), values as bytes (xattrs may be binary). */
export function parsePax(data: Buffer, layer: string): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    const length = space < 0 ? Number.NaN : Number(data.toString("latin1", at, space));
    if (!Number.isSafeInteger(length) || length <= 0 || at + length > data.length)
      throw invalidTar(layer, "a PAX header record is malformed");
    const record = data.subarray(space + 1, at + length - 1); // without the final "\n"
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw invalidTar(layer, "a PAX header record has no '='");
    records.set(record.toString("utf8", 0, eq), Buffer.from(record.subarray(eq + 1)));
    at += length;
  }
  return records;
}

/** Tar names may start with "/" (read as relative, as unpackers do); ".." is refused. */
function entryPath(name: string, layer: string): string {
  return cleanPath(name.replace(/^\/+/, ""), layer);
}

const pad = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/**
 * Reads the entries of a tar file by position (one header read per entry;
 * content is skipped, never read). Global PAX headers and sparse files are refused.
 */
export async function* readTarEntries(file: SpoolReader, layer: string): AsyncGenerator<TarEntry> {
  const fileSize = file.size;
  let at = 0;
  let start = 0;
  let pax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  while (at + BLOCK <= fileSize) {
    const block = await file.read(at, BLOCK);
    if (block.length < BLOCK) break;
    if (block.every((b) => b === 0)) return;
    if (!checksumOk(block)) throw invalidTar(layer, `bad header checksum at byte ${at}`);
    const flag = String.fromCharCode(block[156] ?? 0);
    const headerSize = parseNumber(block.subarray(124, 136));
    if (!Number.isSafeInteger(headerSize) || headerSize < 0)
      throw invalidTar(layer, `bad size field at byte ${at}`);
    if (flag === "x" || flag === "L" || flag === "K") {
      if (headerSize > MAX_EXTENSION_BYTES)
        throw invalidTar(layer, `an extension header of ${headerSize} bytes at byte ${at}`);
      const data = await file.read(at + BLOCK, headerSize);
      if (data.length < headerSize) throw invalidTar(layer, "truncated extension header");
      if (flag === "x") pax = new Map([...pax, ...parsePax(data, layer)]);
      else if (flag === "L") longName = cString(data);
      else longLink = cString(data);
      at += BLOCK + pad(headerSize);
      continue;
    }
    if (flag === "g") throw invalidTar(layer, "global PAX headers are not supported");
    let type = TYPES[flag];
    if (type === undefined)
      throw invalidTar(layer, `unsupported entry type "${flag}" at byte ${at}`);
    const text = (key: string) => pax.get(key)?.toString("utf8");
    const magic = block.toString("latin1", 257, 263);
    let name = cString(block.subarray(0, 100));
    if (magic === "ustar\0") {
      const prefix = cString(block.subarray(345, 500));
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    name = text("path") ?? longName ?? name;
    if (type === "reg" && flag !== "7" && name.endsWith("/")) type = "dir";
    const paxNumber = (key: string, fallback: number) => {
      const v = text(key);
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0)
        throw invalidTar(layer, `PAX ${key} "${v}" is not a number`);
      return key === "mtime" ? Math.floor(n) : n;
    };
    const size = paxNumber("size", headerSize);
    // Links, devices, directories and fifos carry no content, whatever the size field says.
    const dataSize = type === "reg" ? size : 0;
    const rawLink = text("linkpath") ?? longLink ?? cString(block.subarray(157, 257));
    const xattrs: Record<string, string> = {};
    for (const [key, value] of pax)
      if (key.startsWith("SCHILY.xattr."))
        xattrs[key.slice("SCHILY.xattr.".length)] = value.toString("base64");
    const numeric = (from: number, to: number, what: string) => {
      const n = parseNumber(block.subarray(from, to));
      if (!Number.isSafeInteger(n)) throw invalidTar(layer, `bad ${what} field at byte ${at}`);
      return n;
    };
    const entry: TarEntry = {
      path: entryPath(name, layer),
      type,
      size: dataSize,
      mode: numeric(100, 108, "mode") & 0o7777,
      uid: paxNumber("uid", numeric(108, 116, "uid")),
      gid: paxNumber("gid", numeric(116, 124, "gid")),
      uname: text("uname") ?? cString(block.subarray(265, 297)),
      gname: text("gname") ?? cString(block.subarray(297, 329)),
      mtime: paxNumber("mtime", numeric(136, 148, "mtime")),
      linkName:
        type === "hardlink" ? entryPath(rawLink, layer) : type === "symlink" ? rawLink : undefined,
      devMajor: type === "char" || type === "block" ? numeric(329, 337, "devmajor") : 0,
      devMinor: type === "char" || type === "block" ? numeric(337, 345, "devminor") : 0,
      xattrs: Object.keys(xattrs).length > 0 ? xattrs : undefined,
      start,
      dataStart: at + BLOCK,
    };
    if (entry.dataStart + dataSize > fileSize)
      throw invalidTar(layer, `entry "${name}" runs past the end of the layer`);
    yield entry;
    at = entry.dataStart + pad(dataSize);
    start = at;
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
}

/** A plain ustar header for a regular file the converter adds (landmarks, the TOC). */
export function ustarHeader(name: string, size: number, mode = 0o644): Buffer {
  const block = Buffer.alloc(BLOCK);
  if (Buffer.byteLength(name) > 100) throw new Error(`ustar name too long: ${name}`);
  block.write(name, 0, "utf8");
  const octal = (value: number, at: number, width: number) =>
    block.write(`${value.toString(8).padStart(width - 1, "0")}\0`, at, "latin1");
  octal(mode, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(0, 136, 12);
  block[156] = 0x30; // regular file
  block.write("ustar\0" + "00", 257, "latin1");
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return block;
}

/** Zero bytes that pad `size` bytes of content to whole blocks. */
export function padding(size: number): Buffer {
  return Buffer.alloc(pad(size) - size);
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);
