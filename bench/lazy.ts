/**
 * `npm run bench:lazy`: time from nothing local to a container's first output, for an image of
 * ~500 MB whose start-up command (python3 running a one-line program) reads a few percent of it:
 *   (a) containerd: `ctr images pull` (full pull + unpack) then `ctr run`;
 *   (b) ferry: `ferry mount` of the eStargz image (converted with --prioritize from a recorded
 *       start-up trace; prioritized files prefetched) + overlay + `runc run`;
 *   (c) containerd with ferry's snapshotter: `ctr-remote image rpull --snapshotter ferry` of the
 *       same eStargz image, then `ctr run --snapshotter ferry` (its peak RSS is reported too).
 * Then, once, (c) with --background-fetch: the time until every layer is complete locally.
 * Both read from a real Distribution registry on loopback; each run starts from an empty
 * containerd / empty ferry store. Prints medians, the ratio and the bytes fetched.
 * Root only (FUSE, overlayfs, runc). Not a test: it asserts nothing.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { pushLayout, writeLayoutFromTree } from "../test/fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../test/fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../test/fixtures/runtimes.ts";
import {
  proxyPluginConfig,
  type RunningSnapshotter,
  startSnapshotter,
} from "../test/fixtures/snapshotter.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const FERRY = join(ROOT, "bin", "ferry.js");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CACHE = join(ROOT, ".tmp", "bench-lazy-image-v1");
const PROGRAM =
  "import json, sys; print(json.dumps({'python': sys.version.split()[0], 'ok': True}))";
const COMMAND = ["/usr/bin/python3", "-c", PROGRAM];
/** Filler layers of real files, each capped at this many file bytes. */
const FILLER_BYTES = 150e6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** python3, its ldd closure (each path as ldd names it, and a symlink's target too). */
async function pythonFiles(): Promise<string[]> {
  const { stdout } = await run("ldd", ["/usr/bin/python3.11"]);
  const paths = new Set(["/usr/bin/python3", "/usr/bin/python3.11"]);
  for (const m of stdout.matchAll(/(\/\S+) \(0x/g)) paths.add(m[1] as string);
  for (const p of [...paths]) {
    if ((await lstat(p)).isSymbolicLink()) {
      const target = await readlink(p);
      paths.add(target.startsWith("/") ? target : join(p, "..", target));
    }
  }
  return [...paths];
}

/** Builds the plain image once (cached in .tmp/): python + stdlib + three filler layers from /usr. */
async function ensureImage(): Promise<void> {
  const built = await stat(join(CACHE, "index.json")).then(
    () => true,
    () => false,
  );
  if (built) return;
  await rm(CACHE, { recursive: true, force: true });
  await mkdir(CACHE, { recursive: true });
  console.log("building the image (once) ...");
  await writeLayoutFromTree(
    CACHE,
    "plain",
    [
      await pythonFiles(),
      ["/usr/lib/python3.11"],
      ["/usr/lib/x86_64-linux-gnu"],
      ["/usr/share"],
      ["/usr/bin", "/usr/sbin", "/usr/libexec"],
    ],
    { maxBytesPerLayer: FILLER_BYTES, level: 6 },
  );
}

function ferry(args: string[], store: string): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [FERRY, ...args, "--store", store], { maxBuffer: 64 << 20 });
}

interface Mounted {
  child: ChildProcess;
  stderr: () => string;
}

/** Starts `ferry mount` and resolves once it says the image is mounted. */
async function mountImage(
  ref: string,
  dir: string,
  store: string,
  record?: string,
): Promise<Mounted> {
  const args = [
    FERRY,
    "mount",
    ref,
    dir,
    "--store",
    store,
    ...(record ? ["--record", record] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (b: Buffer) => {
      stderr += b.toString();
      if (/ferry mount: mounted /.test(stderr)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`ferry mount exited (${code}):\n${stderr}`)));
  });
  return { child, stderr: () => stderr };
}

async function unmount(m: Mounted, dir: string): Promise<string> {
  const exited = new Promise((r) => m.child.once("exit", r));
  m.child.kill("SIGTERM");
  const timer = setTimeout(() => {
    void run("fusermount", ["-u", "-z", dir]).catch(() => undefined);
    m.child.kill("SIGKILL");
  }, 15_000);
  await exited;
  clearTimeout(timer);
  return m.stderr();
}

/** A writable overlay on the mount, and runc running COMMAND in it; resolves with its stdout. */
async function runcOnMount(lower: string, work: string): Promise<string> {
  const base = await mkdtemp(join(work, "run-"));
  const [upper, wd, merged, bundle] = ["upper", "work", "merged", "bundle"].map((d) =>
    join(base, d),
  ) as [string, string, string, string];
  await Promise.all([upper, wd, merged, bundle].map((d) => mkdir(d)));
  await run("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${lower},upperdir=${upper},workdir=${wd}`,
    merged,
  ]);
  const id = `ferry-bench-${process.pid}-${Date.now()}`;
  try {
    await run("runc", ["spec", "--bundle", bundle]);
    const spec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as {
      process: Record<string, unknown>;
      root: Record<string, unknown>;
      linux: { namespaces: Array<{ type: string }> };
    };
    spec.process["terminal"] = false;
    spec.process["args"] = COMMAND;
    spec.root = { path: merged, readonly: false };
    spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== "network");
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec));
    const { stdout } = await run("runc", [
      "--root",
      join(base, "state"),
      "run",
      "--bundle",
      bundle,
      id,
    ]);
    return stdout;
  } finally {
    await run("runc", ["--root", join(base, "state"), "delete", "--force", id]).catch(
      () => undefined,
    );
    await run("umount", [merged]).catch(() => run("umount", ["-l", merged]).catch(() => undefined));
    await rm(base, { recursive: true, force: true });
  }
}

/** A fresh ferry snapshotter (own root and store) and a containerd that uses it. */
async function snapshotterPair(
  work: string,
  name: string,
  args: string[] = [],
): Promise<{
  snapshotter: RunningSnapshotter;
  containerd: RunningContainerd;
  stop(): Promise<void>;
}> {
  const dir = join(work, name);
  await mkdir(dir);
  const snapshotter = await startSnapshotter(dir, ["--store", join(dir, "store"), ...args], {
    ...process.env,
    HOME: dir,
  });
  const containerd = await startContainerd({ extraConfig: proxyPluginConfig(snapshotter.socket) });
  return {
    snapshotter,
    containerd,
    async stop() {
      await containerd.stop();
      await snapshotter.stop();
    },
  };
}

/** Peak resident set of a process (VmHWM), in bytes. */
async function peakRss(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function blobBytes(registry: RunningRegistry, since: number): Promise<number> {
  const gets = await registry.blobGets();
  return gets.slice(since).reduce((n, g) => n + g.bytes, 0);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench:lazy needs root (FUSE, overlayfs, runc)");
  await ensureImage();
  const work = await mkdtemp(join(tmpdir(), "ferry-bench-lazy-"));
  const registry = await startRegistry();
  try {
    const plain = `${registry.host}/bench/python:plain`;
    const first = `${registry.host}/bench/python:esgz-untraced`;
    const lazy = `${registry.host}/bench/python:esgz`;
    await pushLayout(CACHE, "plain", plain);

    // Convert, record a start-up trace from a lazy run, convert again with it.
    const convertStore = join(work, "convert-store");
    let started = performance.now();
    await ferry(["convert", "--estargz", plain, first], convertStore);
    const convertSeconds = (performance.now() - started) / 1000;
    const trace = join(work, "trace.txt");
    const recordDir = join(work, "record-mnt");
    await mkdir(recordDir);
    const recording = await mountImage(first, recordDir, join(work, "record-store"), trace);
    console.log(`recorded run: ${(await runcOnMount(recordDir, work)).trim()}`);
    await unmount(recording, recordDir);
    const traced = (await readFile(trace, "utf8")).split("\n").filter(Boolean).length;
    started = performance.now();
    await ferry(["convert", "--estargz", "--prioritize", trace, plain, lazy], convertStore);
    const convertTracedSeconds = (performance.now() - started) / 1000;

    const sizeOf = async (tag: string) => {
      const res = await fetch(`${registry.url}/v2/bench/python/manifests/${tag}`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      const m = (await res.json()) as { config: { size: number }; layers: Array<{ size: number }> };
      return m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
    };
    const plainSize = await sizeOf("plain");
    const lazySize = await sizeOf("esgz");
    console.log(
      `image: ${mb(plainSize)} (gzip), ${mb(lazySize)} as eStargz; trace: ${traced} paths; convert: ${convertSeconds.toFixed(1)} s, ${convertTracedSeconds.toFixed(1)} s with --prioritize`,
    );

    const a: number[] = [];
    const b: number[] = [];
    const c: number[] = [];
    const aBytes: number[] = [];
    const bBytes: number[] = [];
    const cBytes: number[] = [];
    const cRss: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // (a) containerd: full pull + unpack, then run.
      const containerd = await startContainerd();
      try {
        const before = (await registry.blobGets()).length;
        const t0 = performance.now();
        await containerd.ctr(["images", "pull", "--plain-http", plain]);
        const { stdout } = await containerd.ctr(["run", "--rm", plain, `bench-${i}`, ...COMMAND]);
        a.push((performance.now() - t0) / 1000);
        aBytes.push(await blobBytes(registry, before));
        if (!stdout.includes('"ok": true')) throw new Error(`ctr run printed ${stdout}`);
      } finally {
        await containerd.stop();
      }
      // (b) ferry: lazy mount (prefetching the prioritized files) + overlay + runc.
      const dir = join(work, `mnt-${i}`);
      await mkdir(dir);
      const before = (await registry.blobGets()).length;
      const t0 = performance.now();
      const mounted = await mountImage(lazy, dir, join(work, `store-${i}`));
      try {
        const stdout = await runcOnMount(dir, work);
        b.push((performance.now() - t0) / 1000);
        if (!stdout.includes('"ok": true')) throw new Error(`runc printed ${stdout}`);
      } finally {
        const log = await unmount(mounted, dir);
        bBytes.push(await blobBytes(registry, before));
        if (i === 0) console.log(log.trim().split("\n").slice(-2).join("\n"));
      }
      // (c) containerd with ferry's snapshotter: remote snapshots, then run.
      const pair = await snapshotterPair(work, `snapshotter-${i}`);
      try {
        const before = (await registry.blobGets()).length;
        const t0 = performance.now();
        await run("ctr-remote", [
          "-a",
          pair.containerd.socket,
          "images",
          "rpull",
          "--plain-http",
          "--snapshotter",
          "ferry",
          lazy,
        ]);
        const { stdout } = await pair.containerd.ctr([
          "run",
          "--rm",
          "--snapshotter",
          "ferry",
          lazy,
          `bench-c-${i}`,
          ...COMMAND,
        ]);
        c.push((performance.now() - t0) / 1000);
        cBytes.push(await blobBytes(registry, before));
        cRss.push(await peakRss(pair.snapshotter.pid()));
        if (!stdout.includes('"ok": true')) throw new Error(`ctr run printed ${stdout}`);
      } finally {
        await pair.stop();
      }
      console.log(
        `run ${i + 1}: (a) ${a[i]?.toFixed(2)} s, ${mb(aBytes[i] ?? 0)}   (b) ${b[i]?.toFixed(2)} s, ${mb(bBytes[i] ?? 0)}   (c) ${c[i]?.toFixed(2)} s, ${mb(cBytes[i] ?? 0)}, RSS ${mb(cRss[i] ?? 0)}`,
      );
    }
    // (c) once more with background fetch on: how long until the layers are complete locally.
    const layers = (
      (await (
        await fetch(`${registry.url}/v2/bench/python/manifests/esgz`, {
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        })
      ).json()) as { layers: unknown[] }
    ).layers.length;
    const pair = await snapshotterPair(work, "snapshotter-background", [
      "--background-fetch",
      "200MiB",
    ]);
    let completeSeconds = 0;
    try {
      const t0 = performance.now();
      await run("ctr-remote", [
        "-a",
        pair.containerd.socket,
        "images",
        "rpull",
        "--plain-http",
        "--snapshotter",
        "ferry",
        lazy,
      ]);
      await pair.containerd.ctr([
        "run",
        "--rm",
        "--snapshotter",
        "ferry",
        lazy,
        "bench-bg",
        ...COMMAND,
      ]);
      while ((pair.snapshotter.log().match(/: complete: /g) ?? []).length < layers)
        await new Promise((r) => setTimeout(r, 100));
      completeSeconds = (performance.now() - t0) / 1000;
    } finally {
      await pair.stop();
    }
    const ma = median(a);
    const mbb = median(b);
    console.log("");
    console.log(
      `(a) ctr images pull + ctr run:   median ${ma.toFixed(2)} s, fetched ${mb(median(aBytes))}`,
    );
    console.log(
      `(b) ferry mount + runc (lazy):   median ${mbb.toFixed(2)} s, fetched ${mb(median(bBytes))}`,
    );
    const mc = median(c);
    console.log(
      `(c) rpull + ctr run, ferry snapshotter: median ${mc.toFixed(2)} s, fetched ${mb(median(cBytes))}, snapshotter peak RSS ${mb(median(cRss))}`,
    );
    console.log(`ratio (b)/(a): ${(mbb / ma).toFixed(3)}   (target <= 0.25)`);
    console.log(`ratio (c)/(a): ${(mc / ma).toFixed(3)}   (target <= 0.15)`);
    console.log(
      `bytes fetched by (b): ${((100 * median(bBytes)) / lazySize).toFixed(1)}% of the eStargz image (target <= 15%)`,
    );
    console.log(
      `bytes fetched by (c): ${((100 * median(cBytes)) / lazySize).toFixed(1)}% of the eStargz image (target <= 10%); RSS target <= 150 MB`,
    );
    console.log(
      `(c) with --background-fetch 200MiB: every layer complete locally after ${completeSeconds.toFixed(2)} s`,
    );
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
