// The kernel FUSE protocol (linux/fuse.h, protocol 7.x): opcodes, request parsing, reply encoding.
// Pure: buffers in, buffers out; the session does the I/O on /dev/fuse.

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor version whose structures this file encodes. */
export const FUSE_KERNEL_MINOR_VERSION = 38;
export const FUSE_ROOT_ID = 1;
export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  COPY_FILE_RANGE: 47,
  TMPFILE: 51,
} as const;

/** Requests that would change the filesystem: answered EROFS. */
export const WRITE_OPCODES: ReadonlySet<number> = new Set([
  Opcode.SETATTR,
  Opcode.SYMLINK,
  Opcode.MKNOD,
  Opcode.MKDIR,
  Opcode.UNLINK,
  Opcode.RMDIR,
  Opcode.RENAME,
  Opcode.LINK,
  Opcode.WRITE,
  Opcode.SETXATTR,
  Opcode.REMOVEXATTR,
  Opcode.CREATE,
  Opcode.FALLOCATE,
  Opcode.RENAME2,
  Opcode.COPY_FILE_RANGE,
  Opcode.TMPFILE,
]);

/** Requests the kernel sends without expecting an answer. */
export const NO_REPLY_OPCODES: ReadonlySet<number> = new Set([
  Opcode.FORGET,
  Opcode.BATCH_FORGET,
  Opcode.INTERRUPT,
]);

export const InitFlag = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
} as const;

export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_CACHE_DIR = 1 << 3;

export interface RequestHeader {
  readonly length: number;
  readonly opcode: number;
  readonly unique: bigint;
  readonly nodeid: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

export interface Request {
  readonly header: RequestHeader;
  /** The bytes after the header (the operation's own struct, then names). */
  readonly body: Buffer;
}

/** Splits one message read from /dev/fuse into header and body. */
export function parseRequest(message: Buffer): Request {
  if (message.length < IN_HEADER_SIZE)
    throw new Error(`FUSE request of ${message.length} bytes is shorter than its header`);
  const length = message.readUInt32LE(0);
  const header: RequestHeader = {
    length,
    opcode: message.readUInt32LE(4),
    unique: message.readBigUInt64LE(8),
    nodeid: Number(message.readBigUInt64LE(16)),
    uid: message.readUInt32LE(24),
    gid: message.readUInt32LE(28),
    pid: message.readUInt32LE(32),
  };
  const extlen = message.readUInt16LE(36) * 8;
  return {
    header,
    body: message.subarray(IN_HEADER_SIZE, Math.max(IN_HEADER_SIZE, length - extlen)),
  };
}

/** A NUL-terminated name at `at` of a request body. */
export function cName(body: Buffer, at = 0): string {
  const end = body.indexOf(0, at);
  return body.toString("utf8", at, end < 0 ? body.length : end);
}

/** A whole reply: header (with `-errno` or 0) and payload. */
export function reply(unique: bigint, error: number, payload?: Buffer): Buffer {
  const size = payload === undefined ? 0 : payload.length;
  const out = Buffer.alloc(OUT_HEADER_SIZE + size);
  out.writeUInt32LE(OUT_HEADER_SIZE + size, 0);
  out.writeInt32LE(error === 0 ? 0 : -Math.abs(error), 4);
  out.writeBigUInt64LE(unique, 8);
  if (payload !== undefined) payload.copy(out, OUT_HEADER_SIZE);
  return out;
}

/** FUSE_NOTIFY_INVAL_ENTRY: the kernel drops its cached entry `name` of directory `parent`. */
export function invalidateEntryNotice(parent: number, name: string): Buffer {
  const bytes = Buffer.from(name);
  const body = Buffer.alloc(16 + bytes.length + 1);
  body.writeBigUInt64LE(BigInt(parent), 0);
  body.writeUInt32LE(bytes.length, 8);
  bytes.copy(body, 16);
  // A notice is an unsolicited reply: unique 0, the notice code where the error goes.
  const out = reply(0n, 0, body);
  out.writeInt32LE(NOTIFY_INVAL_ENTRY, 4);
  return out;
}

const NOTIFY_INVAL_ENTRY = 3;

export interface InitIn {
  readonly major: number;
  readonly minor: number;
  readonly maxReadahead: number;
  readonly flags: number;
}

export function parseInit(body: Buffer): InitIn {
  return {
    major: body.readUInt32LE(0),
    minor: body.readUInt32LE(4),
    maxReadahead: body.readUInt32LE(8),
    flags: body.readUInt32LE(12),
  };
}

export interface InitOut {
  readonly minor: number;
  readonly maxReadahead: number;
  readonly flags: number;
  readonly maxWrite: number;
  readonly maxPages: number;
}

/** fuse_init_out (64 bytes). */
export function encodeInit(init: InitOut): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  b.writeUInt32LE(init.minor, 4);
  b.writeUInt32LE(init.maxReadahead, 8);
  b.writeUInt32LE(init.flags >>> 0, 12);
  b.writeUInt16LE(16, 16); // max_background
  b.writeUInt16LE(12, 18); // congestion_threshold
  b.writeUInt32LE(init.maxWrite, 20);
  b.writeUInt32LE(1, 24); // time_gran: nanoseconds
  b.writeUInt16LE(init.maxPages, 28);
  return b;
}

export interface Attr {
  readonly ino: number;
  readonly size: number;
  /** Seconds since the epoch; used for atime, mtime and ctime. */
  readonly mtime: number;
  readonly mtimeNsec: number;
  /** st_mode: type bits and permissions. */
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
}

export const ATTR_SIZE = 88;

/** fuse_attr (88 bytes) at `at` of `b`. */
export function writeAttr(b: Buffer, at: number, a: Attr): void {
  const mtime = BigInt(Math.max(0, Math.floor(a.mtime)));
  b.writeBigUInt64LE(BigInt(a.ino), at);
  b.writeBigUInt64LE(BigInt(a.size), at + 8);
  b.writeBigUInt64LE(BigInt(Math.ceil(a.size / 512)), at + 16);
  b.writeBigUInt64LE(mtime, at + 24);
  b.writeBigUInt64LE(mtime, at + 32);
  b.writeBigUInt64LE(mtime, at + 40);
  b.writeUInt32LE(a.mtimeNsec, at + 48);
  b.writeUInt32LE(a.mtimeNsec, at + 52);
  b.writeUInt32LE(a.mtimeNsec, at + 56);
  b.writeUInt32LE(a.mode >>> 0, at + 60);
  b.writeUInt32LE(a.nlink, at + 64);
  b.writeUInt32LE(a.uid >>> 0, at + 68);
  b.writeUInt32LE(a.gid >>> 0, at + 72);
  b.writeUInt32LE(a.rdev >>> 0, at + 76);
  b.writeUInt32LE(4096, at + 80);
}

/** fuse_entry_out (128 bytes): the answer to LOOKUP. */
export function encodeEntry(a: Attr, validSeconds: number): Buffer {
  const b = Buffer.alloc(40 + ATTR_SIZE);
  b.writeBigUInt64LE(BigInt(a.ino), 0);
  b.writeBigUInt64LE(0n, 8); // generation: inode numbers are never reused within a mount
  b.writeBigUInt64LE(BigInt(validSeconds), 16);
  b.writeBigUInt64LE(BigInt(validSeconds), 24);
  writeAttr(b, 40, a);
  return b;
}

/** fuse_attr_out (104 bytes): the answer to GETATTR. */
export function encodeAttrOut(a: Attr, validSeconds: number): Buffer {
  const b = Buffer.alloc(16 + ATTR_SIZE);
  b.writeBigUInt64LE(BigInt(validSeconds), 0);
  writeAttr(b, 16, a);
  return b;
}

/** fuse_open_out (16 bytes). */
export function encodeOpen(fh: number, openFlags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

export interface ReadIn {
  readonly fh: number;
  readonly offset: number;
  readonly size: number;
}

/** fuse_read_in: also the body of READDIR. */
export function parseRead(body: Buffer): ReadIn {
  return {
    fh: Number(body.readBigUInt64LE(0)),
    offset: Number(body.readBigUInt64LE(8)),
    size: body.readUInt32LE(16),
  };
}

/** fuse_open_in: the open(2) flags. */
export function parseOpenFlags(body: Buffer): number {
  return body.readUInt32LE(0);
}

/** fuse_getxattr_in / listxattr: the caller's buffer size (0 asks for the size needed) and, for GETXATTR, the name. */
export function parseXattrRequest(body: Buffer): { size: number; name: string } {
  return { size: body.readUInt32LE(0), name: cName(body, 8) };
}

/** fuse_getxattr_out (8 bytes): the size a value or list needs. */
export function encodeXattrSize(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** fuse_batch_forget_in: how many (nodeid, nlookup) pairs follow. */
export function parseBatchForgetCount(body: Buffer): number {
  return body.readUInt32LE(0);
}

export interface StatFs {
  readonly blocks: number;
  readonly files: number;
}

/** fuse_statfs_out (80 bytes): nothing free, names up to 255 bytes. */
export function encodeStatFs(s: StatFs): Buffer {
  const b = Buffer.alloc(80);
  b.writeBigUInt64LE(BigInt(s.blocks), 0);
  b.writeBigUInt64LE(BigInt(s.files), 24);
  b.writeUInt32LE(4096, 40); // bsize
  b.writeUInt32LE(255, 44); // namelen
  b.writeUInt32LE(4096, 48); // frsize
  return b;
}

export interface Dirent {
  readonly ino: number;
  readonly name: string;
  /** DT_* value (st_mode >> 12). */
  readonly type: number;
}

/**
 * fuse_dirent records for READDIR, starting at index `offset` of `entries`, as many
 * as fit in `size` bytes. Each record's `off` is the index of the next entry.
 */
export function encodeDirents(entries: readonly Dirent[], offset: number, size: number): Buffer {
  const parts: Buffer[] = [];
  let used = 0;
  for (let i = offset; i < entries.length; i++) {
    const e = entries[i] as Dirent;
    const name = Buffer.from(e.name, "utf8");
    const recLen = (24 + name.length + 7) & ~7;
    if (used + recLen > size) break;
    const rec = Buffer.alloc(recLen);
    rec.writeBigUInt64LE(BigInt(e.ino), 0);
    rec.writeBigUInt64LE(BigInt(i + 1), 8);
    rec.writeUInt32LE(name.length, 16);
    rec.writeUInt32LE(e.type, 20);
    name.copy(rec, 24);
    parts.push(rec);
    used += recLen;
  }
  return Buffer.concat(parts);
}

/** The kernel's new_encode_dev: how fuse_attr carries a device number. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}
