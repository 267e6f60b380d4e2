// Finding and stopping a running `ferry mount`: each mount leaves a small state file naming its
// process, so `ferry umount DIR` can ask that process to unmount and flush its record.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { FerryError } from "../../observe/index.ts";
import { isProcessAlive, writeFileAtomic } from "../../fsx/index.ts";

const execFileAsync = promisify(execFile);
const STOP_WAIT_MS = 15_000;

export interface MountState {
  readonly pid: number;
  /**
   * When the process started (field 22 of /proc/PID/stat, clock ticks since boot): a pid
   * reused by another process after the mount died has another, so it is never signalled.
   */
  readonly startTime?: string | undefined;
  readonly dir: string;
  readonly reference: string;
}

/** Field 22 (starttime) of a /proc/PID/stat line; the command name (field 2) may hold spaces and parentheses. */
export function parseStartTime(stat: string): string | undefined {
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  // Fields after the command name start at field 3.
  const value = stat.slice(close + 2).split(" ")[22 - 3];
  return value !== undefined && /^\d+$/.test(value) ? value : undefined;
}

/** The start time of a live process, or undefined when there is none (or no /proc). */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    return parseStartTime(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * Whether the process a state file names is still the `ferry mount` that wrote it: alive with
 * the recorded start time, or (a state file without one) a command line that mounts `dir`.
 */
export async function isMountProcess(state: MountState): Promise<boolean> {
  if (!isProcessAlive(state.pid)) return false;
  if (state.startTime !== undefined) return (await processStartTime(state.pid)) === state.startTime;
  try {
    const args = (await readFile(`/proc/${state.pid}/cmdline`, "utf8")).split("\0");
    const cwd = await readlink(`/proc/${state.pid}/cwd`);
    return args.includes("mount") && args.some((a) => a !== "" && resolve(cwd, a) === state.dir);
  } catch {
    return false;
  }
}

/** Where mount state files live: $FERRY_RUN_DIR, else /run/ferry/mounts as root, else a temp dir. */
export function mountStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env["FERRY_RUN_DIR"]) return join(env["FERRY_RUN_DIR"], "mounts");
  if (process.getuid?.() === 0) return "/run/ferry/mounts";
  return join(tmpdir(), `ferry-${process.getuid?.() ?? "user"}`, "mounts");
}

function stateFile(dir: string, env: NodeJS.ProcessEnv): string {
  const key = createHash("sha256").update(resolve(dir)).digest("hex").slice(0, 32);
  return join(mountStateDir(env), `${key}.json`);
}

export async function writeMountState(
  state: MountState,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const startTime = state.startTime ?? (await processStartTime(state.pid));
  await writeFileAtomic(stateFile(state.dir, env), JSON.stringify({ ...state, startTime }));
}

export async function removeMountState(
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  await rm(stateFile(dir, env), { force: true });
}

async function readMountState(
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<MountState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(dir, env), "utf8")) as MountState;
  } catch {
    return undefined;
  }
}

/** Whether `dir` is the mount point of a FUSE filesystem (from /proc/self/mountinfo). */
export async function isFuseMountPoint(dir: string): Promise<boolean> {
  const want = resolve(dir);
  const info = await readFile("/proc/self/mountinfo", "utf8");
  for (const line of info.split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-");
    if (sep < 0) continue;
    const point = (fields[4] ?? "").replace(/\\(\d{3})/g, (_, o: string) =>
      String.fromCharCode(Number.parseInt(o, 8)),
    );
    if (point === want && (fields[sep + 1] ?? "").startsWith("fuse")) return true;
  }
  return false;
}

/**
 * Stops the `ferry mount` serving `dir`: SIGTERM to its process (which unmounts and writes its
 * record), waiting for it to exit; then unmounts whatever is left (e.g. after a kill -9).
 */
export async function unmountDir(
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ stoppedPid: number | undefined }> {
  const state = await readMountState(dir, env);
  let stoppedPid: number | undefined;
  // A pid from a stale state file may belong to another process by now: only ours is signalled.
  if (state !== undefined && (await isMountProcess(state))) {
    process.kill(state.pid, "SIGTERM");
    const deadline = Date.now() + STOP_WAIT_MS;
    while (isProcessAlive(state.pid) && Date.now() < deadline) await sleep(50);
    stoppedPid = state.pid;
  }
  if (await isFuseMountPoint(dir)) {
    try {
      await execFileAsync("umount", [resolve(dir)]);
    } catch (cause) {
      throw new FerryError("FERRY_INVALID_ARGUMENT", `cannot unmount ${dir}: it is busy`, {
        hint: "stop what uses it (a container, an overlay mounted on it, a shell inside it), then run ferry umount again",
        cause,
        fields: { dir },
      });
    }
  } else if (stoppedPid === undefined) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `${dir} is not a ferry mount`, {
      hint: "list FUSE mounts with `grep fuse /proc/mounts`",
      fields: { dir },
    });
  }
  await removeMountState(dir, env);
  return { stoppedPid };
}
