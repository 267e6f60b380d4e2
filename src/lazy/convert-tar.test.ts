import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import tar from "tar-stream";
import { isFerryError } from "../observe/index.ts";
import { SpoolReader } from "./convert-spool.ts";
import { parseNumber, readTarEntries, type TarEntry, ustarHeader } from "./convert-tar.ts";

const LONG = `${"long-directory-name/".repeat(6)}file.txt`;

async function tarOf(
  entries: Array<{ header: Record<string, unknown>; body?: Buffer }>,
): Promise<Buffer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  pack.on("data", (b: unknown) => {
    parts.push(b as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries)
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      const header = { mtime: new Date(1_700_000_000_000), ...e.header } as tar.Header;
      if (e.body) pack.entry(header, e.body, done);
      else pack.entry(header, done);
    });
  pack.finalize();
  await ended;
  return Buffer.concat(parts);
}

let dir: string;

async function entriesOf(bytes: Buffer): Promise<{ entries: TarEntry[]; bytes: Buffer }> {
  const path = join(dir, `t-${Math.random()}`);
  await writeFile(path, bytes);
  const file = await open(path, "r");
  try {
    const entries: TarEntry[] = [];
    for await (const e of readTarEntries(new SpoolReader(file, bytes.length), "sha256:l"))
      entries.push(e);
    return { entries, bytes };
  } finally {
    await file.close();
  }
}

describe("readTarEntries", () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-tar-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads metadata and positions, PAX names, links, devices and xattrs included", async () => {
    const body = Buffer.from("hello, tar\n");
    const { entries, bytes } = await entriesOf(
      await tarOf([
        { header: { name: "./etc/", type: "directory", mode: 0o750, uid: 5, gid: 6 } },
        { header: { name: "etc/f", size: body.length, mode: 0o640, uname: "u", gname: "g" }, body },
        { header: { name: "etc/h", type: "link", linkname: "./etc/f" } },
        { header: { name: "etc/s", type: "symlink", linkname: "../f" } },
        {
          header: { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3 },
        },
        {
          header: { name: LONG, size: 2, pax: { "SCHILY.xattr.user.k": "v" } },
          body: Buffer.from("ok"),
        },
      ]),
    );
    assert.deepEqual(
      entries.map((e) => [e.path, e.type]),
      [
        ["etc", "dir"],
        ["etc/f", "reg"],
        ["etc/h", "hardlink"],
        ["etc/s", "symlink"],
        ["dev/null", "char"],
        [LONG, "reg"],
      ],
    );
    const [d, f, h, s, c, long] = entries as [
      TarEntry,
      TarEntry,
      TarEntry,
      TarEntry,
      TarEntry,
      TarEntry,
    ];
    assert.deepEqual([d.mode, d.uid, d.gid], [0o750, 5, 6]);
    assert.deepEqual(
      [f.size, f.mode, f.uname, f.gname, f.mtime],
      [body.length, 0o640, "u", "g", 1_700_000_000],
    );
    assert.deepEqual(bytes.subarray(f.dataStart, f.dataStart + f.size), body);
    assert.equal(h.linkName, "etc/f");
    assert.equal(s.linkName, "../f");
    assert.deepEqual([c.devMajor, c.devMinor], [1, 3]);
    assert.deepEqual(long.xattrs, { "user.k": Buffer.from("v").toString("base64") });
    // The PAX header belongs to the entry: its blocks start the entry's header range.
    assert.ok(long.dataStart - long.start > 512);
    assert.equal(long.start, s.dataStart + 512); // after the device entry's one block
  });

  it("refuses a damaged header and an entry escaping the root", async () => {
    const good = await tarOf([{ header: { name: "a", size: 1 }, body: Buffer.from("a") }]);
    const bad = Buffer.from(good);
    bad[0] = 0x62; // name changed, checksum not
    await assert.rejects(entriesOf(bad), (err: unknown) =>
      isFerryError(err, "FERRY_ARCHIVE_INVALID"),
    );
    const escaping = Buffer.concat([ustarHeader("../../etc/passwd", 0), Buffer.alloc(1024)]);
    await assert.rejects(entriesOf(escaping), /escapes the root/);
  });
});

describe("parseNumber", () => {
  it("reads octal and base-256 fields", () => {
    assert.equal(parseNumber(Buffer.from("0000644\0")), 0o644);
    const b256 = Buffer.alloc(12);
    b256[0] = 0x80;
    b256.writeUIntBE(2 ** 40, 6, 6);
    assert.equal(parseNumber(b256), 2 ** 40);
  });
});
