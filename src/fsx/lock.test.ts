import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { FerryError, isFerryError } from "../observe/index.ts";
import { acquireLock, type LockOwner } from "./lock.ts";

// The lock's seam: the caller words the timeout; plain-file locks of older versions are read.

const execFileAsync = promisify(execFile);

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-fsx-lock-"));
});
after(() => rm(work, { recursive: true, force: true }));

let n = 0;
const newLockPath = () => join(work, `l${++n}.lock`);

const lockedError = (owner: LockOwner, timeoutMs: number) =>
  new FerryError("FERRY_CONFIG_LOCKED", `locked by ${owner.pid} for ${timeoutMs} ms`, {
    fields: { pid: owner.pid, thisProcess: owner.thisProcess },
  });

describe("fsx acquireLock", () => {
  it("times out with the caller's error, naming the live owner of a plain-file lock", async () => {
    const path = newLockPath();
    await writeFile(path, `${process.pid} another-process-tag`);
    await assert.rejects(acquireLock(path, { timeoutMs: 50, lockedError }), (err) => {
      assert.ok(isFerryError(err, "FERRY_CONFIG_LOCKED"));
      assert.equal(err.fields.pid, process.pid);
      assert.equal(err.fields.thisProcess, false);
      return true;
    });
  });

  it("breaks a plain-file lock whose owner is gone, and leaves no aside behind", async () => {
    const path = newLockPath();
    await writeFile(path, "999999999 deadbeef");
    const lock = await acquireLock(path, { timeoutMs: 5_000, lockedError });
    await lock.release();
    assert.deepEqual(
      (await readdir(work)).filter((f) => f.startsWith(path.slice(work.length + 1))),
      [],
    );
  });

  it("a waiter of this process that is aborted fails with FERRY_INTERRUPTED naming the lock", async () => {
    const path = newLockPath();
    const held = await acquireLock(path, { lockedError });
    const abort = new AbortController();
    const waiting = acquireLock(path, { timeoutMs: 30_000, signal: abort.signal, lockedError });
    abort.abort();
    await assert.rejects(waiting, (err) => {
      assert.ok(isFerryError(err, "FERRY_INTERRUPTED"));
      assert.match(err.message, new RegExp(`lock ${path}`));
      return true;
    });
    await held.release();
  });
});

describe("fsx acquireLock on a full disk (a real tmpfs)", () => {
  it("still locks: the lock is a symlink, which needs no data block", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("mounting a tmpfs needs root");
    const fs = join(work, "full");
    await mkdir(fs);
    await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", fs]);
    try {
      const block = Buffer.alloc(64 * 1024, 1);
      for (let i = 0; ; i++) {
        const wrote = await writeFile(join(fs, `filler-${i}`), block).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code !== "ENOSPC") throw err;
            return false;
          },
        );
        if (!wrote) break;
      }
      await assert.rejects(writeFile(join(fs, "one-more"), "x"), { code: "ENOSPC" });
      const lock = await acquireLock(join(fs, "index.lock"), { lockedError });
      await lock.release();
    } finally {
      await execFileAsync("umount", [fs]);
    }
  });
});
