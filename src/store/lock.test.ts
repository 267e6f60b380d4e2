import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstat, mkdtemp, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { acquireLock, isLockHeld } from "./lock.ts";

// The store lock on a real directory: callers of one process, and another live process.

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-lock-"));
});
after(() => rm(work, { recursive: true, force: true }));

let n = 0;
const newLockPath = () => join(work, `l${++n}.lock`);

describe("acquireLock", () => {
  it("lets one caller of this process in at a time, and leaves no lock behind", async () => {
    const path = newLockPath();
    let inside = 0;
    let most = 0;
    // Many callers at once, each holding the lock across file operations, as index writers do.
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const lock = await acquireLock(path, { timeoutMs: 30_000 });
          inside++;
          most = Math.max(most, inside);
          await writeFile(join(work, `held-${i}`), String(i));
          await lstat(path);
          inside--;
          await lock.release();
        }),
      );
      await assert.rejects(lstat(path), { code: "ENOENT" }, `a lock left after round ${round}`);
    }
    assert.equal(most, 1, "two callers held the lock at once");
  });

  it("breaks a lock naming this process that no caller here holds (a leftover)", async () => {
    const path = newLockPath();
    const first = await acquireLock(path);
    const token = await readlink(path);
    await first.release();
    await symlink(token, path); // as if a release had been undone
    assert.equal(await isLockHeld(path), false);
    const second = await acquireLock(path, { timeoutMs: 1_000 });
    assert.notEqual(await readlink(path), token);
    await second.release();
  });

  it("says whose lock it waited for: another live process", async () => {
    const path = newLockPath();
    const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"]);
    try {
      await symlink(`${other.pid} 0123abcd 0123456789abcdef`, path);
      assert.equal(await isLockHeld(path), true);
      await assert.rejects(acquireLock(path, { timeoutMs: 50 }), (err) => {
        assert.ok(isFerryError(err, "FERRY_STORE_LOCKED"));
        assert.match(err.message, new RegExp(`held by process ${other.pid}$`));
        assert.equal(err.fields["thisProcess"], false);
        assert.match(err.hint ?? "", new RegExp(`pid ${other.pid}`));
        return true;
      });
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("says whose lock it waited for: this process", async () => {
    const path = newLockPath();
    const held = await acquireLock(path);
    await assert.rejects(acquireLock(path, { timeoutMs: 50 }), (err) => {
      assert.ok(isFerryError(err, "FERRY_STORE_LOCKED"));
      assert.match(err.message, new RegExp(`held by this process \\(pid ${process.pid}\\)$`));
      assert.equal(err.fields["thisProcess"], true);
      return true;
    });
    await held.release();
    const next = await acquireLock(path, { timeoutMs: 1_000 });
    await next.release();
  });
});
