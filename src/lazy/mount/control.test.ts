// `ferry umount` signals the process its state file names only while that process is still
// the `ferry mount` that wrote it: a pid reused by an unrelated process is left alone.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../../observe/index.ts";
import { isProcessAlive } from "../../fsx/index.ts";
import {
  isMountProcess,
  parseStartTime,
  processStartTime,
  unmountDir,
  writeMountState,
} from "./control.ts";

describe("mount state and pid reuse", () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];

  /** A live process that is not a ferry mount (as a reused pid would be). */
  function bystander(): ChildProcess {
    const child = spawn("sleep", ["600"], { stdio: "ignore" });
    children.push(child);
    return child;
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "ferry-control-"));
    env = { FERRY_RUN_DIR: join(home, "run") };
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await rm(home, { recursive: true, force: true });
  });

  it("reads field 22 of /proc/PID/stat, whatever the command name holds", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    assert.equal(parseStartTime(`42 (a) b (c)) ${fields.join(" ")}`), "22");
    assert.equal(parseStartTime("garbage"), undefined);
  });

  it("records the mount's start time and tells it apart from a pid's next owner", async () => {
    const own = await processStartTime(process.pid);
    assert.match(own ?? "", /^\d+$/);
    const dir = join(home, "mnt");
    assert.equal(
      await isMountProcess({ pid: process.pid, startTime: own, dir, reference: "r" }),
      true,
    );
    const other = bystander();
    const pid = other.pid as number;
    assert.equal(await isMountProcess({ pid, startTime: own, dir, reference: "r" }), false);
    // A state file without a start time: the command line must be a mount of that directory.
    assert.equal(await isMountProcess({ pid, dir, reference: "r" }), false);
  });

  it("ferry umount leaves alone a process that reused a dead mount's pid", async () => {
    const dir = join(home, "reused");
    await mkdir(dir);
    const other = bystander();
    const pid = other.pid as number;
    // The state of a mount that died; its pid now belongs to `other` (which started later).
    const theirs = await processStartTime(pid);
    await writeMountState(
      { pid, startTime: String(Number(theirs) - 1), dir, reference: "app:1" },
      env,
    );
    await assert.rejects(
      unmountDir(dir, env),
      (err: unknown) =>
        isFerryError(err, "FERRY_INVALID_ARGUMENT") && /is not a ferry mount/.test(String(err)),
    );
    assert.equal(isProcessAlive(pid), true);
    assert.equal(other.signalCode, null);
  });

  it("ferry umount stops the process that wrote the state", async () => {
    const dir = join(home, "live");
    await mkdir(dir);
    const mount = bystander();
    const pid = mount.pid as number;
    const exited = new Promise((resolve) => mount.once("exit", (_, signal) => resolve(signal)));
    // As `ferry mount` writes it: the start time is read from /proc.
    await writeMountState({ pid, dir, reference: "app:1" }, env);
    const { stoppedPid } = await unmountDir(dir, env);
    assert.equal(stoppedPid, pid);
    assert.equal(await exited, "SIGTERM");
  });
});
