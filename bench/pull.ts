/**
 * `npm run bench`: ferry pull vs skopeo copy (the peer) against a real
 * Distribution registry on loopback, in one run, several times each, alternating.
 * Prints medians, ratios and peak RSS. Not a test: it asserts nothing. Every run starts after
 * `sync`; a first round of each is not counted; the order alternates.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { pushLayout, writeLayoutFromTree } from "../test/fixtures/images.ts";
import { startRegistry } from "../test/fixtures/registry.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CACHE = join(ROOT, ".tmp", "bench-image-v1");

/** ~500 MB (compressed) of real files in five layers, built once and cached in .tmp/. */
const LAYERS: Array<{ roots: string[]; max: number }> = [
  { roots: ["/usr/lib/x86_64-linux-gnu"], max: 300e6 },
  { roots: ["/usr/share"], max: 250e6 },
  { roots: ["/usr/bin", "/usr/sbin"], max: 200e6 },
  { roots: ["/usr/local"], max: 250e6 },
  { roots: ["/usr/lib/python3", "/usr/libexec", "/usr/include"], max: 200e6 },
];

interface Sample {
  seconds: number;
  maxRssKb: number;
}

async function timed(cmd: string, args: string[]): Promise<Sample> {
  // Each run starts from a quiet disk: no earlier run's (or the push's) writeback to wait behind.
  await run("sync", []);
  const started = performance.now();
  const child = spawn("/usr/bin/time", ["-f", "%M", cmd, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((r) => child.on("close", r));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${code}):\n${stderr}`);
  const lines = stderr.trim().split("\n");
  return { seconds, maxRssKb: Number(lines[lines.length - 1]) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
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
  await writeLayoutFromTree(
    CACHE,
    "bench",
    LAYERS.map((l) => l.roots),
    { maxBytesPerLayer: 300e6 },
  );
}

async function main(): Promise<void> {
  await run("bash", [join(ROOT, "scripts", "services.sh"), "install"]);
  await ensureImage();
  const index = JSON.parse(await readFile(join(CACHE, "index.json"), "utf8")) as {
    manifests: Array<{ digest: string }>;
  };
  const manifestDigest = index.manifests[0]?.digest as string;
  const manifest = JSON.parse(
    await readFile(join(CACHE, "blobs", "sha256", manifestDigest.slice(7)), "utf8"),
  ) as {
    layers: Array<{ size: number }>;
  };
  const imageBytes = manifest.layers.reduce((s, l) => s + l.size, 0);
  const registry = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), "ferry-bench-"));
  try {
    const ref = `${registry.host}/bench/usr:v1`;
    await pushLayout(CACHE, "bench", ref);
    const node = process.execPath;
    const ferry = [join(ROOT, "bin", "ferry.js")];
    const results = {
      ferryCold: [] as Sample[],
      skopeoCold: [] as Sample[],
      ferryWarm: [] as Sample[],
      nodeStart: [] as Sample[],
    };
    const skopeo = (dest: string) =>
      timed("skopeo", [
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${dest}:bench`,
      ]);
    const ferryPull = (store: string) =>
      timed(node, [...ferry, "pull", "--quiet", "--store", store, ref]);
    // One round of each first, not counted: the first reads after the push and ferry's first
    // start (Node's compile cache) would otherwise land on whichever runs first.
    await skopeo(join(work, "warm-skopeo"));
    await ferryPull(join(work, "warm-ferry"));
    await rm(join(work, "warm-skopeo"), { recursive: true, force: true });
    await rm(join(work, "warm-ferry"), { recursive: true, force: true });
    for (let i = 0; i < RUNS; i++) {
      const store = join(work, `store-${i}`);
      const dest = join(work, `skopeo-${i}`);
      // Alternating who goes first: memory freed by the last round's deletions returns to the
      // host after a delay on this VM (free page reporting) and costs the next one to touch it.
      if (i % 2 === 0) {
        results.skopeoCold.push(await skopeo(dest));
        results.ferryCold.push(await ferryPull(store));
      } else {
        results.ferryCold.push(await ferryPull(store));
        results.skopeoCold.push(await skopeo(dest));
      }
      // The repeat pull is short and the machine's noise is not: three samples per round, each
      // beside a bare `node -e 0` for the share of it that is Node's own start.
      for (let r = 0; r < 3; r++) {
        results.ferryWarm.push(await ferryPull(store));
        results.nodeStart.push(await timed(node, ["-e", "0"]));
      }
      await rm(store, { recursive: true, force: true });
      await rm(dest, { recursive: true, force: true });
    }
    const m = (xs: Sample[]) => median(xs.map((x) => x.seconds));
    const rss = (xs: Sample[]) => Math.max(...xs.map((x) => x.maxRssKb)) / 1024;
    const cpus = (await readFile("/proc/cpuinfo", "utf8")).match(/^processor/gm)?.length ?? 0;
    const shaNi = (await readFile("/proc/cpuinfo", "utf8")).includes(" sha_ni");
    const lines = [
      `image: ${(imageBytes / 1e6).toFixed(0)} MB in ${manifest.layers.length} layers; ${RUNS} runs each; ${cpus} cores; sha_ni=${shaNi}`,
      `skopeo copy (cold)   median ${m(results.skopeoCold).toFixed(3)} s   peak RSS ${rss(results.skopeoCold).toFixed(0)} MB`,
      `ferry pull (cold)    median ${m(results.ferryCold).toFixed(3)} s   peak RSS ${rss(results.ferryCold).toFixed(0)} MB   ratio to skopeo ${(m(results.ferryCold) / m(results.skopeoCold)).toFixed(2)}x (target <= 0.60x)`,
      `ferry pull (repeat)  median ${(m(results.ferryWarm) * 1000).toFixed(0)} ms of ${results.ferryWarm.length}   peak RSS ${rss(results.ferryWarm).toFixed(0)} MB (target <= 150 ms)`,
      `node -e 0 (beside it) median ${(m(results.nodeStart) * 1000).toFixed(0)} ms: Node's own start, part of every ferry command`,
      `ferry cold throughput ${(imageBytes / 1e6 / m(results.ferryCold)).toFixed(0)} MB/s; skopeo ${(imageBytes / 1e6 / m(results.skopeoCold)).toFixed(0)} MB/s`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    if (process.env.BENCH_JSON) {
      process.stdout.write(`${JSON.stringify({ imageBytes, results })}\n`);
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
