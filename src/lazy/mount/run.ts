// Running an image from a mount: a writable overlay over the (read-only) mount, and runc
// started on it with the image's entrypoint and cmd. The runtime spec starts from
// `runc spec`'s defaults, so it follows the installed runc.
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FerryError } from "../../observe/index.ts";
import type { RunConfig } from "./image.ts";

const execFileAsync = promisify(execFile);

export interface Overlay {
  /** The writable root: the mount below, with changes kept in a temp dir. */
  readonly merged: string;
  /** Unmounts the overlay and removes its upper, work and merged dirs. */
  remove(): Promise<void>;
}

/** Mounts an overlay with `lower` as its only lower dir, upper and work dirs in a new temp dir under `parent`. */
export async function mountOverlay(lower: string, parent = tmpdir()): Promise<Overlay> {
  const base = await mkdtemp(join(parent, "ferry-overlay-"));
  const [upper, work, merged] = ["upper", "work", "merged"].map((d) => join(base, d)) as [
    string,
    string,
    string,
  ];
  await Promise.all([mkdir(upper), mkdir(work), mkdir(merged)]);
  try {
    await execFileAsync("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      merged,
    ]);
  } catch (cause) {
    await rm(base, { recursive: true, force: true });
    throw new FerryError("FERRY_RUNTIME_ERROR", `cannot mount an overlay over ${lower}`, {
      hint: "needs root and overlayfs; the lower dir must be a mounted image",
      cause,
    });
  }
  return {
    merged,
    async remove() {
      await execFileAsync("umount", [merged]).catch(() =>
        execFileAsync("umount", ["-l", merged]).catch(() => undefined),
      );
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** The process an image's config starts: entrypoint + cmd, or entrypoint + `args` when given. */
export function imageArgs(config: RunConfig, args?: readonly string[]): string[] {
  const out = [...config.entrypoint, ...(args ?? config.cmd)];
  if (out.length === 0)
    throw new FerryError("FERRY_INVALID_ARGUMENT", "the image has no entrypoint or cmd to run", {
      hint: "give the command to run",
    });
  return out;
}

/** The capabilities container engines give by default (runc spec's own set is smaller). */
const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** "uid[:gid]" from the image's User; names would need the image's /etc/passwd, so they run as root. */
function numericUser(user: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (m === null) return { uid: 0, gid: 0 };
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

/** Edits `runc spec`'s default config for a container of this image on `rootfs` (no network namespace). */
export function runtimeSpec(
  defaults: Record<string, unknown>,
  config: RunConfig,
  options: { rootfs: string; args: readonly string[]; hostname?: string },
): Record<string, unknown> {
  const spec = structuredClone(defaults) as {
    process: Record<string, unknown>;
    root: Record<string, unknown>;
    linux: { namespaces: Array<{ type: string }> };
    hostname?: string;
  };
  spec.process["terminal"] = false;
  spec.process["args"] = [...options.args];
  spec.process["env"] = config.env.length > 0 ? [...config.env] : spec.process["env"];
  spec.process["cwd"] = config.workingDir === "" ? "/" : config.workingDir;
  spec.process["user"] = numericUser(config.user);
  spec.process["capabilities"] = {
    bounding: DEFAULT_CAPABILITIES,
    effective: DEFAULT_CAPABILITIES,
    permitted: DEFAULT_CAPABILITIES,
  };
  spec.root = { path: options.rootfs, readonly: false };
  spec.hostname = options.hostname ?? "ferry";
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== "network");
  return spec;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunContainerOptions {
  /** The mounted image (e.g. a `ferry mount` directory). */
  lower: string;
  config: RunConfig;
  /** Replaces the image's cmd (after its entrypoint). */
  args?: readonly string[];
  /** Where the overlay and bundle go (a temp dir under it, removed afterwards). */
  parent?: string;
  id?: string;
}

/** Overlay over `lower`, `runc run` of the image's process in it, everything removed afterwards. */
export async function runContainer(options: RunContainerOptions): Promise<RunResult> {
  const args = imageArgs(options.config, options.args);
  const overlay = await mountOverlay(options.lower, options.parent);
  const bundle = await mkdtemp(join(options.parent ?? tmpdir(), "ferry-bundle-"));
  const state = join(bundle, "state");
  const id = options.id ?? `ferry-${process.pid}-${Date.now()}`;
  try {
    await execFileAsync("runc", ["spec", "--bundle", bundle]);
    const defaults = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const spec = runtimeSpec(defaults, options.config, { rootfs: overlay.merged, args });
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec, null, 2));
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn("runc", ["--root", state, "run", "--bundle", bundle, id], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => {
        stdout += b.toString();
      });
      child.stderr.on("data", (b: Buffer) => {
        stderr += b.toString();
      });
      child.once("error", (cause) =>
        reject(
          new FerryError("FERRY_RUNTIME_UNAVAILABLE", "cannot start runc", {
            hint: "install runc",
            cause,
          }),
        ),
      );
      child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  } finally {
    await execFileAsync("runc", ["--root", state, "delete", "--force", id]).catch(() => undefined);
    await overlay.remove();
    await rm(bundle, { recursive: true, force: true });
  }
}
