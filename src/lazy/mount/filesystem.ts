// Answers FUSE requests from the merged tree: metadata from the TOCs, file contents from
// verified chunks. Read-only: anything that would write gets EROFS.
import { constants as fsConstants } from "node:fs";
import { constants } from "node:os";
import {
  type Attr,
  cName,
  type Dirent,
  encodeAttrOut,
  encodeDev,
  encodeDirents,
  encodeEntry,
  encodeOpen,
  encodeStatFs,
  encodeXattrSize,
  FOPEN_CACHE_DIR,
  FOPEN_KEEP_CACHE,
  Opcode,
  parseOpenFlags,
  parseRead,
  parseXattrRequest,
  type Request,
  WRITE_OPCODES,
} from "./fuse-protocol.ts";
import type { Answer } from "./fuse-session.ts";
import { type FsNode, type FsTree, statMode } from "./tree.ts";
import type { Chunk } from "../toc.ts";

const E = constants.errno;
/** The tree never changes while mounted: the kernel may cache names and attributes for long. */
const VALID_SECONDS = 3600;

export interface FileReader {
  /** Verified bytes of a chunk of `path` in `layer`. */
  chunk(layer: number, chunk: Chunk, path: string): Promise<Buffer>;
  /** Told once per file, the first time its contents are asked for (the `--record` trace). */
  firstRead(path: string): void;
}

export class Filesystem {
  readonly #tree: FsTree;
  readonly #reader: FileReader;
  readonly #dirCache = new Map<number, Dirent[]>();
  readonly #read = new Set<string>();
  #statfs: Buffer | undefined;

  constructor(tree: FsTree, reader: FileReader) {
    this.#tree = tree;
    this.#reader = reader;
  }

  handle = async (request: Request): Promise<Answer | undefined> => {
    const { opcode, nodeid } = request.header;
    if (WRITE_OPCODES.has(opcode)) return { error: E.EROFS };
    switch (opcode) {
      case Opcode.FORGET:
      case Opcode.BATCH_FORGET:
      case Opcode.INTERRUPT:
        // Inodes live as long as the mount; an interrupted read finishes and is answered.
        return undefined;
      case Opcode.LOOKUP: {
        const child = this.#dir(nodeid)?.children?.get(cName(request.body));
        if (child === undefined) return { error: E.ENOENT };
        return { error: 0, payload: encodeEntry(this.#attr(child), VALID_SECONDS) };
      }
      case Opcode.GETATTR: {
        const node = this.#tree.nodes[nodeid];
        if (node === undefined) return { error: E.ENOENT };
        return { error: 0, payload: encodeAttrOut(this.#attr(node), VALID_SECONDS) };
      }
      case Opcode.READLINK: {
        const node = this.#tree.nodes[nodeid];
        if (node?.type !== "symlink") return { error: E.EINVAL };
        return { error: 0, payload: Buffer.from(node.linkName ?? "") };
      }
      case Opcode.OPEN: {
        const node = this.#tree.nodes[nodeid];
        if (node === undefined) return { error: E.ENOENT };
        if (node.type === "dir") return { error: E.EISDIR };
        const flags = parseOpenFlags(request.body);
        if ((flags & 3) !== fsConstants.O_RDONLY || flags & 0o1000 /* O_TRUNC */)
          return { error: E.EROFS };
        if (node.content !== undefined && node.size === 0) this.#first(node.content.path);
        return { error: 0, payload: encodeOpen(0, FOPEN_KEEP_CACHE) };
      }
      case Opcode.READ:
        return this.#readFile(nodeid, request.body);
      case Opcode.OPENDIR: {
        if (this.#dir(nodeid) === undefined) return { error: E.ENOTDIR };
        return { error: 0, payload: encodeOpen(0, FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR) };
      }
      case Opcode.READDIR: {
        const dir = this.#dir(nodeid);
        if (dir === undefined) return { error: E.ENOTDIR };
        const { offset, size } = parseRead(request.body);
        return { error: 0, payload: encodeDirents(this.#dirents(dir), offset, size) };
      }
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR:
      case Opcode.FLUSH:
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR:
        return { error: 0 };
      case Opcode.ACCESS: {
        const mask = request.body.readUInt32LE(0);
        return { error: mask & fsConstants.W_OK ? E.EROFS : 0 };
      }
      case Opcode.STATFS: {
        this.#statfs ??= encodeStatFs({
          blocks: this.#tree.nodes.reduce((n, f) => n + Math.ceil(f.size / 4096), 0),
          files: this.#tree.nodes.length - 1,
        });
        return { error: 0, payload: this.#statfs };
      }
      case Opcode.GETXATTR: {
        const node = this.#tree.nodes[nodeid];
        if (node === undefined) return { error: E.ENOENT };
        const { size, name } = parseXattrRequest(request.body);
        const value = node.xattrs.get(name);
        if (value === undefined) return { error: E.ENODATA };
        return sized(value, size);
      }
      case Opcode.LISTXATTR: {
        const node = this.#tree.nodes[nodeid];
        if (node === undefined) return { error: E.ENOENT };
        const names = Buffer.from([...node.xattrs.keys()].map((k) => `${k}\0`).join(""));
        return sized(names, parseXattrRequest(request.body).size);
      }
      default:
        return { error: E.ENOSYS };
    }
  };

  #dir(nodeid: number): FsNode | undefined {
    const node = this.#tree.nodes[nodeid];
    return node?.type === "dir" ? node : undefined;
  }

  #attr(node: FsNode): Attr {
    return {
      ino: node.ino,
      size: node.size,
      mtime: node.mtime,
      mtimeNsec: 0,
      mode: statMode(node),
      nlink: node.nlink,
      uid: node.uid,
      gid: node.gid,
      rdev: encodeDev(node.devMajor, node.devMinor),
    };
  }

  #dirents(dir: FsNode): Dirent[] {
    let list = this.#dirCache.get(dir.ino);
    if (list === undefined) {
      list = [
        { ino: dir.ino, name: ".", type: 4 },
        { ino: (dir.parent ?? dir).ino, name: "..", type: 4 },
      ];
      for (const [name, child] of dir.children ?? [])
        list.push({ ino: child.ino, name, type: statMode(child) >>> 12 });
      this.#dirCache.set(dir.ino, list);
    }
    return list;
  }

  #first(path: string): void {
    if (this.#read.has(path)) return;
    this.#read.add(path);
    this.#reader.firstRead(path);
  }

  async #readFile(nodeid: number, body: Buffer): Promise<Answer> {
    const node = this.#tree.nodes[nodeid];
    if (node === undefined) return { error: E.ENOENT };
    if (node.type !== "reg" || node.content === undefined) return { error: E.EINVAL };
    const { offset, size } = parseRead(body);
    const end = Math.min(node.size, offset + size);
    if (offset >= end) return { error: 0, payload: Buffer.alloc(0) };
    const { layer, path, chunks } = node.content;
    this.#first(path);
    const parts: Buffer[] = [];
    for (let i = firstChunk(chunks, offset); i < chunks.length; i++) {
      const chunk = chunks[i] as Chunk;
      if (chunk.chunkOffset >= end) break;
      const bytes = await this.#reader.chunk(layer, chunk, path);
      const from = Math.max(offset, chunk.chunkOffset) - chunk.chunkOffset;
      const to = Math.min(end, chunk.chunkOffset + chunk.size) - chunk.chunkOffset;
      parts.push(bytes.subarray(from, to));
    }
    return { error: 0, payload: Buffer.concat(parts) };
  }
}

/** An xattr value or name list: its size when the caller asks for it (size 0), else the bytes. */
function sized(value: Buffer, size: number): Answer {
  if (size === 0) return { error: 0, payload: encodeXattrSize(value.length) };
  if (value.length > size) return { error: E.ERANGE };
  return { error: 0, payload: value };
}

/** Index of the chunk holding byte `offset` (chunks sorted by chunkOffset, covering the file). */
function firstChunk(chunks: readonly Chunk[], offset: number): number {
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((chunks[mid] as Chunk).chunkOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
