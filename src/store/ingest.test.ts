import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { digestOf } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import { Store } from "./store.ts";

// The store's ingest writer on a real directory: it verifies what it commits.

const execFileAsync = promisify(execFile);

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-ingest-"));
});
after(() => rm(work, { recursive: true, force: true }));

let n = 0;
const newStore = () => Store.open(join(work, `s${++n}`));

function blobOf(bytes: Buffer): Descriptor {
  return { mediaType: "application/octet-stream", digest: digestOf(bytes), size: bytes.length };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function blobsIn(store: Store): Promise<string[]> {
  return readdir(join(store.root, "blobs", "sha256"));
}

describe("Store.ingest", () => {
  const data = randomBytes(300_000);
  const desc = blobOf(data);

  it("writes, verifies and commits a blob; the partial goes and a second ingest finds it stored", async () => {
    const store = await newStore();
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    assert.equal(await writer.open(), 0);
    writer.write(data.subarray(0, 100_000));
    writer.write(data.subarray(100_000));
    await writer.commit();
    await writer.close();
    assert.deepEqual(await readFile(store.blobPath(desc.digest)), data);
    assert.equal(await exists(store.ingestPath(desc.digest)), false);
    assert.equal(await store.ingest(desc), undefined);
  });

  it("resumes a partial: reports its offset, hashes it, and commits the whole", async () => {
    const store = await newStore();
    const first = await store.ingest(desc);
    assert.ok(first !== undefined);
    await first.open();
    first.write(data.subarray(0, 123_456));
    await first.close();
    assert.equal((await stat(store.ingestPath(desc.digest))).size, 123_456);

    const second = await store.ingest(desc);
    assert.ok(second !== undefined);
    assert.equal(await second.open(), 123_456);
    assert.equal(second.offset, 123_456);
    second.write(data.subarray(123_456));
    await second.commit();
    await second.close();
    assert.deepEqual(await readFile(store.blobPath(desc.digest)), data);
  });

  it("a resumed partial holding wrong bytes fails the commit with FERRY_DIGEST_MISMATCH and stores nothing", async () => {
    const store = await newStore();
    const bad = Buffer.from(data.subarray(0, 50_000));
    bad[10] = (bad[10] as number) ^ 0xff;
    await writeFile(store.ingestPath(desc.digest), bad);
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    assert.equal(await writer.open(), 50_000);
    writer.write(data.subarray(50_000));
    await assert.rejects(writer.commit(), (err) => isFerryError(err, "FERRY_DIGEST_MISMATCH"));
    await writer.close();
    assert.deepEqual(await blobsIn(store), []);
    assert.equal(await exists(store.ingestPath(desc.digest)), false, "bad bytes are not kept");
  });

  it("a commit short of the descriptor's size fails with FERRY_SIZE_MISMATCH and stores nothing", async () => {
    const store = await newStore();
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    await writer.open();
    writer.write(data.subarray(0, data.length - 1));
    await assert.rejects(writer.commit(), (err) => {
      assert.ok(isFerryError(err, "FERRY_SIZE_MISMATCH"));
      assert.equal(err.fields.received, data.length - 1);
      return true;
    });
    await writer.close();
    assert.deepEqual(await blobsIn(store), []);
    assert.equal(await exists(store.ingestPath(desc.digest)), false);
  });

  it("bytes past the descriptor's size are refused as they are written, and nothing is stored", async () => {
    const store = await newStore();
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    await writer.open();
    writer.write(data);
    assert.throws(
      () => writer.write(Buffer.from("more")),
      (err) => isFerryError(err, "FERRY_SIZE_MISMATCH"),
    );
    await writer.close();
    assert.deepEqual(await blobsIn(store), []);
    assert.equal(await exists(store.ingestPath(desc.digest)), false);
  });

  it("commits content of the right size but another digest as nothing, with FERRY_DIGEST_MISMATCH", async () => {
    const store = await newStore();
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    await writer.open();
    writer.write(randomBytes(data.length));
    await assert.rejects(writer.commit(), (err) => isFerryError(err, "FERRY_DIGEST_MISMATCH"));
    await writer.close();
    assert.deepEqual(await blobsIn(store), []);
  });

  it("restart starts over in a new file (a new inode), from zero", async () => {
    const store = await newStore();
    const writer = await store.ingest(desc);
    assert.ok(writer !== undefined);
    await writer.open();
    writer.write(randomBytes(1000));
    // A stream serving the old partial holds it open, as the mirror and the peer listener do.
    const reader = await open(writer.path, "r");
    try {
      const before = (await reader.stat()).ino;
      await writer.restart();
      assert.equal(await writer.open(), 0);
      assert.notEqual((await stat(writer.path)).ino, before);
      assert.equal((await reader.stat()).size, 1000, "the old file is left to its readers");
    } finally {
      await reader.close();
    }
    writer.write(data);
    await writer.commit();
    await writer.close();
    assert.deepEqual(await readFile(store.blobPath(desc.digest)), data);
  });

  it("two ingests of one digest: the second waits for the first and then finds the blob stored", async () => {
    const store = await newStore();
    const first = await store.ingest(desc);
    assert.ok(first !== undefined);
    let secondSettled = false;
    const second = store.ingest(desc).finally(() => {
      secondSettled = true;
    });
    await first.open();
    first.write(data);
    await first.commit();
    assert.equal(secondSettled, false, "the second ingest waits while the first holds the lock");
    await first.close();
    assert.equal(await second, undefined);
    assert.deepEqual(await blobsIn(store), [desc.digest.slice("sha256:".length)]);
  });

  it("a process killed mid-write leaves only its partial, which the next ingest resumes", async () => {
    const store = await newStore();
    const storeModule = new URL("./index.ts", import.meta.url).href;
    const half = 150_000;
    const prefix = join(work, `prefix-${++n}`);
    await writeFile(prefix, data.subarray(0, half));
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { Store } = await import(${JSON.stringify(storeModule)});
         const store = await Store.open(${JSON.stringify(store.root)});
         const writer = await store.ingest(${JSON.stringify(desc)});
         await writer.open();
         const { readFile } = await import("node:fs/promises");
         writer.write(await readFile(${JSON.stringify(prefix)}));
         process.stdout.write("written\\n");
         setInterval(() => {}, 60_000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(child.stdout, "data")) as [Buffer];
    assert.equal(line.toString().trim(), "written");
    child.kill("SIGKILL");
    await once(child, "exit");

    assert.deepEqual(await blobsIn(store), []);
    assert.equal((await stat(store.ingestPath(desc.digest))).size, half);
    // The dead writer's lock is broken; its partial is resumed.
    const writer = await store.ingest(desc, { signal: AbortSignal.timeout(30_000) });
    assert.ok(writer !== undefined);
    assert.equal(await writer.open(), half);
    writer.write(data.subarray(half));
    await writer.commit();
    await writer.close();
    assert.deepEqual(await readFile(store.blobPath(desc.digest)), data);
  });
});

describe("Store.ingestFile", () => {
  it("moves a finished file in after hashing it", async () => {
    const store = await newStore();
    const bytes = randomBytes(70_000);
    const file = join(work, `built-${++n}`);
    await writeFile(file, bytes);
    assert.equal(await store.ingestFile(blobOf(bytes), file), true);
    assert.deepEqual(await readFile(store.blobPath(digestOf(bytes))), bytes);
    assert.equal(await exists(file), false);
    assert.equal(await store.ingestFile(blobOf(bytes), file), false, "stored already");
  });

  it("refuses a file that is not the descriptor's blob, storing nothing", async () => {
    const store = await newStore();
    const bytes = randomBytes(70_000);
    const file = join(work, `built-${++n}`);
    await writeFile(file, randomBytes(70_000));
    await assert.rejects(store.ingestFile(blobOf(bytes), file), (err) =>
      isFerryError(err, "FERRY_DIGEST_MISMATCH"),
    );
    await writeFile(file, bytes.subarray(1));
    await assert.rejects(store.ingestFile(blobOf(bytes), file), (err) =>
      isFerryError(err, "FERRY_SIZE_MISMATCH"),
    );
    assert.deepEqual(await blobsIn(store), []);
    assert.deepEqual(await readdir(join(store.root, "ferry", "ingest")), []);
  });
});

describe("Store.ingestUnnamed", () => {
  it("commits under the digest it hashed, once; another expected digest is refused", async () => {
    const store = await newStore();
    const bytes = randomBytes(40_000);
    const writer = await store.ingestUnnamed();
    await writer.write(bytes.subarray(0, 10_000));
    await writer.write(bytes.subarray(10_000));
    const digest = await writer.seal();
    assert.equal(digest, digestOf(bytes));
    assert.equal(writer.size, bytes.length);
    assert.equal(await writer.commit(digest), true);
    assert.deepEqual(await readFile(store.blobPath(digest)), bytes);

    const again = await store.ingestUnnamed();
    await again.write(bytes);
    assert.equal(await again.commit(digest), false, "stored already");

    const other = await store.ingestUnnamed();
    await other.write(randomBytes(10));
    await assert.rejects(other.commit(digest), (err) => isFerryError(err, "FERRY_DIGEST_MISMATCH"));
    assert.deepEqual(await blobsIn(store), [digest.slice("sha256:".length)]);
    assert.deepEqual(await readdir(join(store.root, "ferry", "ingest")), []);
  });
});

describe("Store.ingest on a full disk (a real tmpfs)", () => {
  it("a write the disk takes only part of fails with FERRY_DISK_FULL: no blob, no partial, pressure noted", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("mounting a tmpfs needs root");
    const fs = join(work, `fs-${++n}`);
    await mkdir(fs);
    await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", fs]);
    try {
      const store = await Store.open(join(fs, "store"));
      // Fill the filesystem, then free 64 KiB: less than the blob, so one write of it is cut short.
      await fillDisk(join(fs, "filler"));
      await rm(join(fs, "filler-last"), { force: true });
      const data = randomBytes(300_000);
      const desc = blobOf(data);
      const writer = await store.ingest(desc);
      assert.ok(writer !== undefined);
      try {
        await writer.open();
        assert.throws(
          () => writer.write(data),
          (err) => isFerryError(err, "FERRY_DISK_FULL"),
        );
        assert.equal(store.pressure.full, true);
      } finally {
        await writer.close();
      }
      assert.deepEqual(await blobsIn(store), []);
      assert.equal(await exists(store.ingestPath(desc.digest)), false, "no partial on a full disk");
    } finally {
      await execFileAsync("umount", [fs]);
    }
  });
});

/** Writes files until the filesystem is full; the last one (`${prefix}-last`) is 64 KiB. */
async function fillDisk(prefix: string): Promise<void> {
  const block = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; ; i++) {
    try {
      await writeFile(`${prefix}-${i}`, block, { flag: "wx" });
    } catch (err) {
      if ((err as { code?: string }).code !== "ENOSPC") throw err;
      await rm(`${prefix}-${i}`, { force: true });
      await rename(`${prefix}-${i - 1}`, `${prefix}-last`);
      return;
    }
  }
}

describe("Store.ingestUnnamed killed mid-write", () => {
  it("leaves only a temp file named by its pid, which prune's sweep removes once the process is gone", async () => {
    const store = await newStore();
    const storeModule = new URL("./index.ts", import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { Store } = await import(${JSON.stringify(storeModule)});
         const store = await Store.open(${JSON.stringify(store.root)});
         const writer = await store.ingestUnnamed();
         await writer.write(Buffer.alloc(100_000, 1));
         process.stdout.write("written\\n");
         setInterval(() => {}, 60_000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(child.stdout, "data")) as [Buffer];
    assert.equal(line.toString().trim(), "written");
    child.kill("SIGKILL");
    await once(child, "exit");
    const ingest = join(store.root, "ferry", "ingest");
    const left = await readdir(ingest);
    assert.equal(left.length, 1);
    assert.match(left[0] ?? "", new RegExp(`^unnamed\\.tmp-${child.pid}-[0-9a-f]{8}$`));
    assert.deepEqual(await blobsIn(store), []);
    assert.equal(await store.cleanStaleTemp(), 1);
    assert.deepEqual(await readdir(ingest), []);
  });
});

describe("Store.ingestUnnamed on a full disk (a real tmpfs)", () => {
  it("a write the disk takes only part of fails with FERRY_DISK_FULL and stores nothing", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("mounting a tmpfs needs root");
    const fs = join(work, `fs-${++n}`);
    await mkdir(fs);
    await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", fs]);
    try {
      const store = await Store.open(join(fs, "store"));
      await fillDisk(join(fs, "filler"));
      await rm(join(fs, "filler-last"), { force: true });
      const writer = await store.ingestUnnamed();
      try {
        await assert.rejects(writer.write(randomBytes(300_000)), (err) =>
          isFerryError(err, "FERRY_DISK_FULL"),
        );
        assert.equal(store.pressure.full, true);
      } finally {
        await writer.discard();
      }
      assert.deepEqual(await blobsIn(store), []);
      assert.deepEqual(await readdir(join(store.root, "ferry", "ingest")), []);
    } finally {
      await execFileAsync("umount", [fs]);
    }
  });
});
