/**
 * `npm run bench:mirror` (root): ferry mirror vs the Distribution registry's pull-through cache
 * (`proxy.remoteurl`), both on 127.0.0.1, in front of one upstream Distribution registry that
 * sits in a network namespace behind a rate-limited veth (tbf 800mbit: an emulated WAN).
 * skopeo is the client. Cold pulls (empty mirror) and warm pulls (all cached) of a ~500 MB image,
 * several times each, alternating, medians; 10 concurrent cold clients of the big image; 100
 * concurrent cold clients of a small one. For each: wall time, the upstream's blob bytes (its
 * access log) as a multiple of the image's size, and the mirror process's CPU seconds
 * (/proc/PID/stat). Removes everything it made (namespace, processes, dirs), also on failure.
 * Not a test: it asserts nothing.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { pushLayout, writeImageLayout, writeLayoutFromTree } from "../test/fixtures/images.ts";
import { type RunningRegistry, startRegistry, toYaml } from "../test/fixtures/registry.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CACHE = join(ROOT, ".tmp", "bench-image-v1");
const FERRY_BIN = join(ROOT, "bin", "ferry.js");
const CLK_TCK = 100;
const MB = 1e6;

/** The same ~500 MB image as `npm run bench` (bench/pull.ts), built once and cached in .tmp/. */
const LAYERS: string[][] = [
  ["/usr/lib/x86_64-linux-gnu"],
  ["/usr/share"],
  ["/usr/bin", "/usr/sbin"],
  ["/usr/local"],
  ["/usr/lib/python3", "/usr/libexec", "/usr/include"],
];

// ---- cleanup: everything made is undone in reverse order, on success, failure or a signal ----

const undo: Array<{ what: string; fn: () => Promise<unknown> }> = [];
let cleaning: Promise<void> | undefined;

function onCleanup(what: string, fn: () => Promise<unknown>): void {
  undo.push({ what, fn });
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (undo.length > 0) {
      const step = undo.pop();
      if (step === undefined) break;
      try {
        await step.fn();
      } catch (err) {
        process.stderr.write(`cleanup: ${step.what}: ${(err as Error).message}\n`);
      }
    }
  })();
  return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: cleaning up...\n`);
    void cleanup().then(() => process.exit(130));
  });
}

// ---- helpers ----

async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args, { maxBuffer: 64 * MB })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function statusOf(url: string): Promise<number | undefined> {
  return new Promise((done) => {
    const req = request(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      done(res.statusCode);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => done(undefined));
    req.end();
  });
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      done(true);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  if (!(await waitExit(child, 10_000))) {
    child.kill("SIGKILL");
    await waitExit(child, 2000);
  }
}

/** utime + stime of a process, in seconds (threads included). */
async function cpuSeconds(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** The pid of the process whose command line contains `needle` (a path only this run uses). */
async function pidOf(needle: string): Promise<number> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.split("\0").includes(needle)) return Number(entry);
  }
  throw new Error(`no process with ${needle} on its command line`);
}

async function ensureImage(): Promise<void> {
  if (
    await stat(join(CACHE, "index.json")).then(
      () => true,
      () => false,
    )
  )
    return;
  process.stderr.write("building the benchmark image from /usr (once; cached in .tmp/)...\n");
  await rm(CACHE, { recursive: true, force: true });
  await mkdir(CACHE, { recursive: true });
  await writeLayoutFromTree(CACHE, "bench", LAYERS, { maxBytesPerLayer: 300e6 });
}

/** Bytes of the config and layers of the layout's image tagged `tag`. */
async function imageBytes(layout: string, tag: string): Promise<{ bytes: number; layers: number }> {
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find(
    (m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag,
  );
  if (entry === undefined) throw new Error(`no ${tag} in ${layout}`);
  const manifest = JSON.parse(
    await readFile(join(layout, "blobs", "sha256", entry.digest.slice(7)), "utf8"),
  ) as { config: { size: number }; layers: Array<{ size: number }> };
  return {
    bytes: manifest.config.size + manifest.layers.reduce((s, l) => s + l.size, 0),
    layers: manifest.layers.length,
  };
}

// ---- the emulated WAN and the upstream inside it ----

interface Wan {
  ns: string;
  hostAddr: string;
  nsAddr: string;
}

async function makeWan(): Promise<Wan> {
  const used = await sh("ip", ["-4", "-o", "addr"]);
  let third = (process.pid % 200) + 20;
  while (used.includes(`198.19.${third}.`)) third = (third % 250) + 1;
  const id = process.pid % 100000;
  const wan: Wan = {
    ns: `ferrybench${id}`,
    hostAddr: `198.19.${third}.1`,
    nsAddr: `198.19.${third}.2`,
  };
  const [hostIf, nsIf] = [`fbh${id}`, `fbn${id}`];
  await sh("ip", ["netns", "add", wan.ns]);
  // Deleting the namespace deletes the veth pair with it.
  onCleanup(`ip netns del ${wan.ns}`, () => sh("ip", ["netns", "del", wan.ns]));
  await sh("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
  onCleanup(`ip link del ${hostIf}`, async () => {
    if ((await sh("ip", ["-o", "link"])).includes(`${hostIf}@`))
      await sh("ip", ["link", "del", hostIf]);
  });
  await sh("ip", ["link", "set", nsIf, "netns", wan.ns]);
  await sh("ip", ["addr", "add", `${wan.hostAddr}/30`, "dev", hostIf]);
  await sh("ip", ["link", "set", hostIf, "up"]);
  const inNs = (args: string[]) => sh("ip", ["netns", "exec", wan.ns, ...args]);
  await inNs(["ip", "addr", "add", `${wan.nsAddr}/30`, "dev", nsIf]);
  await inNs(["ip", "link", "set", nsIf, "up"]);
  await inNs(["ip", "link", "set", "lo", "up"]);
  // What leaves the namespace (upstream -> mirrors) goes through the token bucket.
  await inNs(`tc qdisc add dev ${nsIf} root tbf rate 800mbit burst 1mb latency 100ms`.split(" "));
  return wan;
}

interface Upstream {
  url: string;
  host: string;
  logFile: string;
}

async function startUpstream(wan: Wan, dir: string): Promise<Upstream> {
  const host = `${wan.nsAddr}:5000`;
  const configFile = join(dir, "config.yml");
  await writeFile(
    configFile,
    toYaml({
      version: 0.1,
      log: { level: "info", accesslog: { disabled: false } },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: { addr: host, secret: "ferry-bench" },
    }),
  );
  const logFile = join(dir, "registry.log");
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn("ip", ["netns", "exec", wan.ns, "docker-registry", "serve", configFile], {
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  onCleanup("stop the upstream registry", async () => {
    await stopChild(child);
    // Anything left in the namespace is ours (only this script starts processes there).
    const pids = (await sh("ip", ["netns", "pids", wan.ns]).catch(() => ""))
      .split("\n")
      .filter(Boolean);
    for (const pid of pids) process.kill(Number(pid), "SIGKILL");
  });
  const url = `http://${host}`;
  const deadline = Date.now() + 15_000;
  while ((await statusOf(`${url}/v2/`)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`upstream registry did not start:\n${await readFile(logFile, "utf8")}`);
    }
    await sleep(50);
  }
  return { url, host, logFile };
}

const ACCESS_BLOB_GET =
  /"GET \/v2\/\S+\/blobs\/sha256:[0-9a-f]{64}(?:\?\S*)? HTTP\/[0-9.]+" (\d{3}) (\d+|-)/;

/** Where the upstream's access log ends now. */
async function logMark(up: Upstream): Promise<number> {
  return (await stat(up.logFile)).size;
}

/**
 * Waits until the upstream's access log has not grown for a second: a mirror may still be
 * fetching after its clients are done (the Distribution proxy's second fetch of a blob), and
 * those bytes and that CPU belong to the pull that caused them.
 */
async function settle(up: Upstream): Promise<void> {
  let size = await logMark(up);
  let quietSince = Date.now();
  const deadline = Date.now() + 120_000;
  while (Date.now() - quietSince < 1000 && Date.now() < deadline) {
    await sleep(200);
    const now = await logMark(up);
    if (now !== size) {
      size = now;
      quietSince = Date.now();
    }
  }
}

/** Blob body bytes the upstream sent since `mark`. */
async function blobBytesSince(up: Upstream, mark: number): Promise<number> {
  const text = (await readFile(up.logFile)).subarray(mark).toString("utf8");
  let bytes = 0;
  for (const line of text.split("\n")) {
    const m = ACCESS_BLOB_GET.exec(line);
    if (m !== null && m[2] !== "-") bytes += Number(m[2]);
  }
  return bytes;
}

// ---- the two mirrors ----

interface MirrorUnderTest {
  host: string;
  pid: number;
  stop(): Promise<void>;
}

async function startFerryMirror(upstream: Upstream, dir: string): Promise<MirrorUnderTest> {
  const store = join(dir, "store");
  const logFile = join(dir, "ferry.log");
  await mkdir(dir, { recursive: true });
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(
      process.execPath,
      [
        FERRY_BIN,
        "mirror",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        upstream.url,
        "--store",
        store,
      ],
      { stdio: ["ignore", "ignore", fd] },
    );
  } finally {
    closeSync(fd);
  }
  const stop = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  onCleanup("stop ferry mirror", stop);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const log = await readFile(logFile, "utf8");
    const url = /"msg":"mirror listening","url":"([^"]+)"/.exec(log)?.[1];
    if (url !== undefined) return { host: new URL(url).host, pid: child.pid as number, stop };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`ferry mirror did not start:\n${log}`);
    await sleep(25);
  }
}

async function startDistributionProxy(upstream: Upstream): Promise<MirrorUnderTest> {
  const registry: RunningRegistry = await startRegistry({ proxyRemoteUrl: upstream.url });
  onCleanup("stop Distribution proxy", () => registry.stop());
  const pid = await pidOf(join(registry.dir, "config.yml"));
  return { host: registry.host, pid, stop: () => registry.stop() };
}

// ---- clients ----

interface Sample {
  seconds: number;
  /** upstream blob bytes / image bytes */
  upstreamX: number;
  cpu: number;
  failures: number;
}

/** `clients` skopeo copies of `name` from `host` at once; wall time until the last one ends. */
async function pullAll(
  host: string,
  name: string,
  clients: number,
  destRoot: string,
): Promise<{ seconds: number; failures: number; firstError?: string }> {
  await mkdir(destRoot, { recursive: true });
  const started = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: clients }, (_, i) =>
      sh("skopeo", [
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        `docker://${host}/${name}`,
        `oci:${join(destRoot, `client-${i}`)}:x`,
      ]),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  await rm(destRoot, { recursive: true, force: true });
  const failed = results.filter((r) => r.status === "rejected");
  const first = failed[0];
  return {
    seconds,
    failures: failed.length,
    ...(first ? { firstError: String((first as PromiseRejectedResult).reason) } : {}),
  };
}

async function measure(
  up: Upstream,
  mirror: MirrorUnderTest | undefined,
  host: string,
  name: string,
  clients: number,
  imageSize: number,
  destRoot: string,
  label: string,
): Promise<Sample> {
  const mark = await logMark(up);
  const cpu0 = mirror ? await cpuSeconds(mirror.pid) : 0;
  const r = await pullAll(host, name, clients, destRoot);
  await settle(up);
  const cpu1 = mirror ? await cpuSeconds(mirror.pid) : 0;
  const bytes = await blobBytesSince(up, mark);
  const sample = {
    seconds: r.seconds,
    upstreamX: bytes / imageSize,
    cpu: cpu1 - cpu0,
    failures: r.failures,
  };
  process.stderr.write(
    `  ${label.padEnd(34)} ${sample.seconds.toFixed(2)} s, upstream ${sample.upstreamX.toFixed(2)}x, cpu ${sample.cpu.toFixed(2)} s${r.failures ? `, ${r.failures} FAILED: ${r.firstError?.slice(0, 300)}` : ""}\n`,
  );
  return sample;
}

// ---- main ----

type Kind = "ferry" | "dist";

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench:mirror needs root (network namespaces)");
  await sh("bash", [join(ROOT, "scripts", "services.sh"), "install"]);
  await ensureImage();
  const big = await imageBytes(CACHE, "bench");

  const work = await mkdtemp(join(tmpdir(), "ferry-bench-mirror-"));
  onCleanup(`rm ${work}`, () => rm(work, { recursive: true, force: true }));
  // Client copies land in memory, so the clients' disk writes do not weigh on either mirror.
  const clientRoot = await mkdtemp(join("/dev/shm", "ferry-bench-clients-"));
  onCleanup(`rm ${clientRoot}`, () => rm(clientRoot, { recursive: true, force: true }));

  const wan = await makeWan();
  const upDir = join(work, "upstream");
  await mkdir(upDir);
  const up = await startUpstream(wan, upDir);
  process.stderr.write(`upstream ${up.url} in namespace ${wan.ns} (tbf 800mbit)\n`);

  const smallLayout = join(work, "small-layout");
  await writeImageLayout(smallLayout, "small", {
    layers: [[{ path: "small/a.bin", size: 1_500_000 }], [{ path: "small/b.bin", size: 500_000 }]],
    level: 0,
  });
  const small = await imageBytes(smallLayout, "small");
  await Promise.all([
    pushLayout(CACHE, "bench", `${up.host}/bench/usr:v1`),
    pushLayout(smallLayout, "small", `${up.host}/bench/small:v1`),
  ]);

  const start = async (kind: Kind, i: string): Promise<MirrorUnderTest> =>
    kind === "ferry" ? startFerryMirror(up, join(work, `ferry-${i}`)) : startDistributionProxy(up);

  const results: Record<string, Record<Kind | "direct", Sample[]>> = {};
  const add = (scenario: string, kind: Kind | "direct", s: Sample) => {
    results[scenario] ??= { ferry: [], dist: [], direct: [] };
    results[scenario][kind].push(s);
  };

  for (let i = 0; i < RUNS; i++) {
    process.stderr.write(`run ${i + 1}/${RUNS}\n`);
    add(
      "direct",
      "direct",
      await measure(
        up,
        undefined,
        up.host,
        "bench/usr:v1",
        1,
        big.bytes,
        clientRoot,
        "direct from upstream (cold)",
      ),
    );
    const order: Kind[] = i % 2 === 0 ? ["ferry", "dist"] : ["dist", "ferry"];
    for (const kind of order) {
      const mirror = await start(kind, `run${i}`);
      add(
        "cold",
        kind,
        await measure(
          up,
          mirror,
          mirror.host,
          "bench/usr:v1",
          1,
          big.bytes,
          clientRoot,
          `${kind} cold`,
        ),
      );
      add(
        "warm",
        kind,
        await measure(
          up,
          mirror,
          mirror.host,
          "bench/usr:v1",
          1,
          big.bytes,
          clientRoot,
          `${kind} warm`,
        ),
      );
      await mirror.stop();
    }
  }
  process.stderr.write("concurrent clients\n");
  for (const kind of ["ferry", "dist"] as Kind[]) {
    const mirror = await start(kind, "c10");
    add(
      "c10",
      kind,
      await measure(
        up,
        mirror,
        mirror.host,
        "bench/usr:v1",
        10,
        big.bytes,
        clientRoot,
        `${kind} 10 x big, cold`,
      ),
    );
    await mirror.stop();
  }
  for (const kind of ["dist", "ferry"] as Kind[]) {
    const mirror = await start(kind, "c100");
    add(
      "c100",
      kind,
      await measure(
        up,
        mirror,
        mirror.host,
        "bench/small:v1",
        100,
        small.bytes,
        clientRoot,
        `${kind} 100 x small, cold`,
      ),
    );
    await mirror.stop();
  }

  // ---- the table ----
  const med = (xs: Sample[], f: (s: Sample) => number) => median(xs.map(f));
  const rows: string[][] = [
    [
      "scenario",
      "ferry wall",
      "dist wall",
      "ferry/dist",
      "upstream ferry",
      "upstream dist",
      "CPU ferry",
      "CPU dist",
      "CPU ferry/dist",
    ],
  ];
  const labels: Record<string, string> = {
    cold: `cold pull, big (median of ${RUNS})`,
    warm: `warm pull, big (median of ${RUNS})`,
    c10: "10 concurrent cold, big",
    c100: "100 concurrent cold, small",
  };
  for (const key of ["cold", "warm", "c10", "c100"]) {
    const r = results[key];
    if (r === undefined) continue;
    const fw = med(r.ferry, (s) => s.seconds);
    const dw = med(r.dist, (s) => s.seconds);
    const fc = med(r.ferry, (s) => s.cpu);
    const dc = med(r.dist, (s) => s.cpu);
    const failed = (xs: Sample[]) => {
      const n = xs.reduce((a, s) => a + s.failures, 0);
      return n > 0 ? ` (${n} failed)` : "";
    };
    rows.push([
      labels[key] ?? key,
      `${fw.toFixed(2)} s${failed(r.ferry)}`,
      `${dw.toFixed(2)} s${failed(r.dist)}`,
      `${(fw / dw).toFixed(2)}x`,
      `${med(r.ferry, (s) => s.upstreamX).toFixed(2)}x`,
      `${med(r.dist, (s) => s.upstreamX).toFixed(2)}x`,
      `${fc.toFixed(2)} s`,
      `${dc.toFixed(2)} s`,
      dc > 0 ? `${(fc / dc).toFixed(2)}x` : "-",
    ]);
  }
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? "").length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, c) => cell.padEnd(widths?.[c] ?? 0)).join(" | ")} |`;
  const direct = results["direct"]?.direct ?? [];
  const cores = cpus().length;
  const out = [
    `ferry mirror vs Distribution proxy (proxy.remoteurl), both on 127.0.0.1; upstream: Distribution in a netns behind tbf 800mbit; client: skopeo copy`,
    `big image: ${(big.bytes / MB).toFixed(0)} MB in ${big.layers} layers; small image: ${(small.bytes / MB).toFixed(1)} MB in ${small.layers} layers; ${cores} cores`,
    `upstream = blob bytes the upstream sent (its access log) / image size; CPU = mirror process utime+stime`,
    "",
    line(rows[0] ?? []),
    `|${widths?.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.slice(1).map(line),
    "",
    `no mirror (skopeo straight from the upstream), cold big: median ${med(direct, (s) => s.seconds).toFixed(2)} s, upstream ${med(direct, (s) => s.upstreamX).toFixed(2)}x`,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  if (process.env.BENCH_JSON) process.stdout.write(`${JSON.stringify(results)}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench:mirror failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
