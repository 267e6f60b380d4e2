import assert from "node:assert/strict";
import { constants } from "node:os";
import { describe, it } from "node:test";
import type { Chunk } from "../toc.ts";
import { Filesystem } from "./filesystem.ts";
import { FUSE_ROOT_ID, Opcode, parseRequest, type Request } from "./fuse-protocol.ts";
import { buildTree, type MountEntry } from "./tree.ts";

const E = constants.errno;

function request(opcode: number, nodeid: number, body: Buffer = Buffer.alloc(0)): Request {
  const header = Buffer.alloc(40);
  header.writeUInt32LE(40 + body.length, 0);
  header.writeUInt32LE(opcode, 4);
  header.writeBigUInt64LE(7n, 8);
  header.writeBigUInt64LE(BigInt(nodeid), 16);
  return parseRequest(Buffer.concat([header, body]));
}

const name = (s: string) => Buffer.from(`${s}\0`);

function readIn(offset: number, size: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(BigInt(offset), 8);
  b.writeUInt32LE(size, 16);
  return b;
}

function xattrIn(size: number, attr = ""): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return Buffer.concat([b, name(attr)]);
}

function entry(
  path: string,
  type: MountEntry["type"],
  extra: Partial<MountEntry> = {},
): MountEntry {
  return {
    path,
    type,
    size: 0,
    mode: 0o644,
    uid: 0,
    gid: 0,
    linkName: undefined,
    digest: undefined,
    chunks: [],
    mtime: 0,
    xattrs: new Map(),
    devMajor: 0,
    devMinor: 0,
    ...extra,
  };
}

// A 10-byte file in three chunks: "abcd" "efg" "hij".
const pieces = ["abcd", "efg", "hij"];
const chunks: Chunk[] = pieces.map((p, i) => ({
  offset: i * 100,
  end: i * 100 + 50,
  innerOffset: 0,
  chunkOffset: pieces.slice(0, i).join("").length,
  size: p.length,
  digest: `sha256:${i}`,
}));

function setup() {
  const tree = buildTree([
    [
      entry("f", "reg", { size: 10, chunks, xattrs: new Map([["user.k", Buffer.from("value")]]) }),
      entry("empty", "reg"),
      entry("l", "symlink", { linkName: "f" }),
    ],
  ]);
  const fetched: number[] = [];
  const read: string[] = [];
  const fs = new Filesystem(tree, {
    chunk: async (_layer, chunk) => {
      fetched.push(chunk.chunkOffset);
      return Buffer.from(pieces[chunks.indexOf(chunk)] ?? "");
    },
    firstRead: (path) => read.push(path),
  });
  const ino = (n: string) => tree.root.children?.get(n)?.ino ?? 0;
  return { fs, fetched, read, ino };
}

describe("Filesystem", () => {
  it("looks names up and reads links", async () => {
    const { fs, ino } = setup();
    const found = await fs.handle(request(Opcode.LOOKUP, FUSE_ROOT_ID, name("f")));
    assert.equal(found?.error, 0);
    assert.equal(Number(found?.payload?.readBigUInt64LE(0)), ino("f"));
    assert.equal(
      (await fs.handle(request(Opcode.LOOKUP, FUSE_ROOT_ID, name("nope"))))?.error,
      E.ENOENT,
    );
    const link = await fs.handle(request(Opcode.READLINK, ino("l")));
    assert.equal(link?.payload?.toString(), "f");
  });

  it("reads across chunk boundaries, fetching only the chunks the range needs", async () => {
    const { fs, fetched, read, ino } = setup();
    const r = await fs.handle(request(Opcode.READ, ino("f"), readIn(3, 5)));
    assert.equal(r?.payload?.toString(), "defgh");
    assert.deepEqual(fetched, [0, 4, 7]);
    const tail = await fs.handle(request(Opcode.READ, ino("f"), readIn(8, 100)));
    assert.equal(tail?.payload?.toString(), "ij");
    const past = await fs.handle(request(Opcode.READ, ino("f"), readIn(10, 100)));
    assert.equal(past?.payload?.length, 0);
    assert.deepEqual(read, ["f"]);
  });

  it("answers writes with EROFS and records empty files when opened", async () => {
    const { fs, read, ino } = setup();
    for (const op of [Opcode.WRITE, Opcode.MKDIR, Opcode.UNLINK, Opcode.SETATTR, Opcode.CREATE])
      assert.equal((await fs.handle(request(op, ino("f"))))?.error, E.EROFS);
    const flags = Buffer.alloc(8);
    flags.writeUInt32LE(1, 0); // O_WRONLY
    assert.equal((await fs.handle(request(Opcode.OPEN, ino("f"), flags)))?.error, E.EROFS);
    assert.equal((await fs.handle(request(Opcode.OPEN, ino("empty"), Buffer.alloc(8))))?.error, 0);
    assert.deepEqual(read, ["empty"]);
  });

  it("serves xattrs with the size protocol of getxattr(2)", async () => {
    const { fs, ino } = setup();
    const size = await fs.handle(request(Opcode.GETXATTR, ino("f"), xattrIn(0, "user.k")));
    assert.equal(size?.payload?.readUInt32LE(0), 5);
    const value = await fs.handle(request(Opcode.GETXATTR, ino("f"), xattrIn(64, "user.k")));
    assert.equal(value?.payload?.toString(), "value");
    assert.equal(
      (await fs.handle(request(Opcode.GETXATTR, ino("f"), xattrIn(2, "user.k"))))?.error,
      E.ERANGE,
    );
    assert.equal(
      (await fs.handle(request(Opcode.GETXATTR, ino("f"), xattrIn(64, "user.x"))))?.error,
      E.ENODATA,
    );
    const list = await fs.handle(request(Opcode.LISTXATTR, ino("f"), xattrIn(64)));
    assert.equal(list?.payload?.toString(), "user.k\0");
  });

  it("lists a directory with . and .., resuming at the offset the kernel gives", async () => {
    const { fs } = setup();
    const names = (payload: Buffer | undefined) => {
      const out: Array<[string, number]> = [];
      for (let at = 0; payload !== undefined && at < payload.length; ) {
        const len = payload.readUInt32LE(at + 16);
        out.push([
          payload.toString("utf8", at + 24, at + 24 + len),
          Number(payload.readBigUInt64LE(at + 8)),
        ]);
        at += (24 + len + 7) & ~7;
      }
      return out;
    };
    const all = names(
      (await fs.handle(request(Opcode.READDIR, FUSE_ROOT_ID, readIn(0, 4096))))?.payload,
    );
    assert.deepEqual(all.map(([n]) => n).sort(), [".", "..", "empty", "f", "l"]);
    const rest = names(
      (await fs.handle(request(Opcode.READDIR, FUSE_ROOT_ID, readIn(3, 4096))))?.payload,
    );
    assert.deepEqual(rest, all.slice(3));
    const small = names(
      (await fs.handle(request(Opcode.READDIR, FUSE_ROOT_ID, readIn(0, 40))))?.payload,
    );
    assert.equal(small.length, 1, "only whole records that fit");
  });
});
