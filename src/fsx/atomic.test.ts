import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TEMP_NAME, tempPathFor, writeFileAtomic, writeStreamAtomic } from "./atomic.ts";

// Atomic writes on a real directory.

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-fsx-"));
});
after(() => rm(work, { recursive: true, force: true }));

let n = 0;
const newDir = async () => {
  const dir = join(work, `d${++n}`);
  await mkdir(dir);
  return dir;
};

describe("writeFileAtomic", () => {
  it("replaces a file's content and leaves nothing else beside it", async () => {
    const dir = await newDir();
    const path = join(dir, "list.yaml");
    await writeFileAtomic(path, "one\n");
    await writeFileAtomic(path, "two\n");
    assert.equal(await readFile(path, "utf8"), "two\n");
    assert.deepEqual(await readdir(dir), ["list.yaml"]);
  });

  it("creates missing parent directories", async () => {
    const dir = await newDir();
    const path = join(dir, "a", "b", "file");
    await writeFileAtomic(path, "x");
    assert.equal(await readFile(path, "utf8"), "x");
  });

  it("on a failed rename throws the file system's error and removes its temp file", async () => {
    const dir = await newDir();
    const path = join(dir, "taken");
    await mkdir(join(path, "inside"), { recursive: true }); // a non-empty directory: rename fails
    await assert.rejects(writeFileAtomic(path, "x"), (err: NodeJS.ErrnoException) => {
      assert.ok(err.code === "EISDIR" || err.code === "ENOTEMPTY", String(err.code));
      return true;
    });
    assert.deepEqual(await readdir(dir), ["taken"]);
  });

  it("with followSymlink replaces the link's target and keeps the link", async () => {
    const dir = await newDir();
    const target = join(dir, "real.json");
    const link = join(dir, "config.json");
    await writeFileAtomic(target, "{}");
    await symlink(target, link);
    await writeFileAtomic(link, '{"a":1}', { followSymlink: true });
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.equal(await readFile(target, "utf8"), '{"a":1}');
  });

  it("with exactMode sets the mode whatever the umask", async () => {
    const dir = await newDir();
    const path = join(dir, "secret");
    const before = process.umask(0o077);
    try {
      await writeFileAtomic(path, "s", { mode: 0o644, exactMode: true });
    } finally {
      process.umask(before);
    }
    assert.equal((await stat(path)).mode & 0o777, 0o644);
  });

  it("sets the mtime before the file appears", async () => {
    const dir = await newDir();
    const path = join(dir, "use");
    const at = new Date("2024-01-02T03:04:05Z");
    await writeFileAtomic(path, "r\n", { durable: false, mtime: at });
    assert.equal((await stat(path)).mtimeMs, at.getTime());
  });
});

describe("tempPathFor", () => {
  it("names the writer's pid, which TEMP_NAME reads back", () => {
    const m = TEMP_NAME.exec(tempPathFor("/x/index.json"));
    assert.equal(m?.[1], String(process.pid));
  });
});

describe("writeStreamAtomic", () => {
  it("publishes what the writer streamed, with nothing else left beside it", async () => {
    const dir = await newDir();
    const path = join(dir, "images.tar");
    const seen: string[] = [];
    const result = await writeStreamAtomic(path, async (out) => {
      seen.push(...(await readdir(dir))); // the hidden temp file, named for its writer
      out.end("archive bytes");
      return 42;
    });
    assert.equal(result, 42);
    assert.equal(await readFile(path, "utf8"), "archive bytes");
    assert.deepEqual(await readdir(dir), ["images.tar"]);
    assert.equal(seen.length, 1);
    assert.ok(seen[0]?.startsWith(".images.tar.tmp-"), String(seen[0]));
    assert.equal(TEMP_NAME.exec(seen[0] ?? "")?.[1], String(process.pid));
  });

  it("a writer that fails leaves the older file as it was and no temp file", async () => {
    const dir = await newDir();
    const path = join(dir, "images.tar");
    await writeStreamAtomic(path, async (out) => {
      out.end("old");
    });
    await assert.rejects(
      writeStreamAtomic(path, async (out) => {
        out.write("half of a new archi");
        throw new Error("the source broke off");
      }),
      /the source broke off/,
    );
    assert.equal(await readFile(path, "utf8"), "old");
    assert.deepEqual(await readdir(dir), ["images.tar"]);
  });
});
