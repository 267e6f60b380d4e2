/**
 * `npm run bench:fleet`: node-to-node sharing on a fleet of real ferry processes, each
 * in its own network namespace (test/fixtures/fleet.ts), the upstream registry behind a
 * tbf-limited link. Three runs over the same link, each node with a fresh store:
 *   alone     one node pulls the image;
 *   direct    all nodes pull at the same moment, each straight from the upstream;
 *   shared    all nodes pull at the same moment with --peers.
 * A node "has" the image when its mirror has fetched and verified every blob into its
 * store (the client asks each blob's last byte, which the mirror answers only then).
 * Reports upstream blob bytes (the registry's access log) / image size, and the time
 * until the median and the last node have it. Not a test: it asserts nothing.
 *
 * BENCH_NODE_RATE (e.g. 50mbit) shapes every node's own link both ways, as if each node
 * were its own machine; BENCH_IMAGE=layer80 pulls one ~80 MB incompressible layer and two
 * small ones instead of the /usr image (the shaped fleet run of issue #21:
 * BENCH_NODES=16 BENCH_RATE=50mbit BENCH_NODE_RATE=50mbit BENCH_IMAGE=layer80 BENCH_FANOUT=1).
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import {
  type Fleet,
  type FleetNode,
  fetchBlobs,
  fetchManifest,
  metricValue,
  startFleet,
} from "../test/fixtures/fleet.ts";
import { pushLayout, writeImageLayout, writeLayoutFromTree } from "../test/fixtures/images.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const NODES = Number(process.env.BENCH_NODES ?? 8);
const RATE = process.env.BENCH_RATE ?? "200mbit";
const NODE_RATE = process.env.BENCH_NODE_RATE;
const IMAGE = process.env.BENCH_IMAGE ?? "usr";
/** --peer-fanout of the shared run (default: ferry's). */
const FANOUT = process.env.BENCH_FANOUT;
const NAME = "bench/usr";
/** Which runs, e.g. BENCH_ONLY=alone,shared (default: all three). */
const ONLY = (process.env.BENCH_ONLY ?? "alone,direct,shared").split(",");
/**
 * Where node stores go. Real nodes each have their own disk; here all share one, and 8
 * stores written at once make that disk the limit. Default /dev/shm (each store in memory,
 * as if each node had its own fast disk); BENCH_NODE_DIR=/tmp measures the shared disk.
 */
const NODE_DIR = process.env.BENCH_NODE_DIR ?? "/dev/shm";
/** The image of bench/pull.ts (same cache directory, so it is built once for both). */
const CACHE = join(ROOT, ".tmp", IMAGE === "layer80" ? "bench-image-layer80" : "bench-image-v1");
const MB = 1e6;
/** One dominant incompressible layer and two small ones (seeded: the same image every run). */
const LAYER80 = {
  compression: "none" as const,
  layers: [
    [{ path: "big.bin", size: 80 * MB }],
    [{ path: "small.bin", size: 2 * MB }],
    [{ path: "tiny.bin", size: 200_000 }],
  ],
};
const LAYERS = [
  ["/usr/lib/x86_64-linux-gnu"],
  ["/usr/share"],
  ["/usr/bin", "/usr/sbin"],
  ["/usr/local"],
  ["/usr/lib/python3", "/usr/libexec", "/usr/include"],
];

interface Outcome {
  run: string;
  nodes: number;
  seconds: number;
  /** When the median node had the image. */
  medianSeconds: number;
  upstreamBytes: number;
  fromPeers: number;
  /** CPU seconds of the nodes' ferry processes during the run. */
  cpuSeconds: number;
  /** Transfers from peers abandoned, by reason (summed over nodes). */
  peerErrors: Record<string, number>;
  /** Requests answered with relays to ask instead (summed over nodes). */
  redirects: number;
  /** When each node had the image, seconds from the start, in order. */
  finished: number[];
}

async function ensureImage(): Promise<void> {
  const built = await stat(join(CACHE, "index.json")).then(
    () => true,
    () => false,
  );
  if (built) return;
  process.stderr.write(`building the benchmark image ${IMAGE} (once; cached in .tmp/)...\n`);
  await rm(CACHE, { recursive: true, force: true });
  await mkdir(CACHE, { recursive: true });
  if (IMAGE === "layer80") await writeImageLayout(CACHE, "bench", LAYER80);
  else await writeLayoutFromTree(CACHE, "bench", LAYERS, { maxBytesPerLayer: 300e6 });
}

async function pullAll(fleet: Fleet, nodes: FleetNode[], label: string): Promise<Outcome> {
  const before = await fleet.registry.blobBytes();
  const cpuBefore = await Promise.all(nodes.map((n) => n.cpuSeconds()));
  const started = performance.now();
  const finished = await Promise.all(
    nodes.map(async (n) => {
      const image = await fetchManifest(n.mirrorUrl, NAME, "v1");
      await fetchBlobs(n.mirrorUrl, NAME, image, { whole: false });
      return (performance.now() - started) / 1000;
    }),
  );
  finished.sort((a, b) => a - b);
  const seconds = finished.at(-1) as number;
  const medianSeconds = finished[Math.floor((finished.length - 1) / 2)] as number;
  const upstreamBytes = (await fleet.registry.blobBytes()) - before;
  let fromPeers = 0;
  let cpuSeconds = 0;
  let redirects = 0;
  const peerErrors: Record<string, number> = {};
  for (const [i, n] of nodes.entries()) {
    const text = await n.metrics();
    fromPeers += metricValue(text, "ferry_peer_blob_bytes_total", 'source="peer"');
    redirects += metricValue(text, "ferry_peer_redirects_total");
    for (const reason of ["bad-bytes", "stalled", "unreachable", "refused"]) {
      const v = metricValue(text, "ferry_peer_errors_total", `reason="${reason}"`);
      if (v > 0) peerErrors[reason] = (peerErrors[reason] ?? 0) + v;
    }
    cpuSeconds += (await n.cpuSeconds()) - (cpuBefore[i] as number);
  }
  process.stderr.write(`${label}: ${seconds.toFixed(1)} s\n`);
  return {
    run: label,
    nodes: nodes.length,
    seconds,
    medianSeconds,
    upstreamBytes,
    fromPeers,
    cpuSeconds,
    peerErrors,
    redirects,
    finished,
  };
}

async function main(): Promise<void> {
  await run("bash", [join(ROOT, "scripts", "services.sh"), "install"]);
  await ensureImage();
  const index = JSON.parse(await readFile(join(CACHE, "index.json"), "utf8")) as {
    manifests: Array<{ digest: string }>;
  };
  const top = index.manifests[0]?.digest ?? "";
  const manifest = JSON.parse(
    await readFile(join(CACHE, "blobs", "sha256", top.slice(7)), "utf8"),
  ) as { config: { size: number }; layers: Array<{ size: number }> };
  const imageBytes = manifest.layers.reduce((s, l) => s + l.size, manifest.config.size);
  const fleet = await startFleet({
    nodes: NODES,
    upstreamRate: RATE,
    nodeDir: NODE_DIR,
    ...(NODE_RATE === undefined ? {} : { nodeRate: NODE_RATE }),
  });
  try {
    await pushLayout(CACHE, "bench", `${fleet.registry.host}/${NAME}:v1`);
    const results: Outcome[] = [];
    const first = fleet.nodes[0] as FleetNode;
    await first.start({ peers: false });
    results.push(await pullAll(fleet, [first], "alone"));
    if (ONLY.includes("direct")) {
      await Promise.all(fleet.nodes.map((n) => n.start({ peers: false })));
      results.push(await pullAll(fleet, fleet.nodes, "direct"));
    }
    if (ONLY.includes("shared")) {
      const extraArgs = FANOUT === undefined ? [] : ["--peer-fanout", FANOUT];
      await Promise.all(fleet.nodes.map((n) => n.start({ peers: true, extraArgs })));
      results.push(await pullAll(fleet, fleet.nodes, "shared"));
    }
    const alone = results[0] as Outcome;
    const cpus = (await readFile("/proc/cpuinfo", "utf8")).match(/^processor/gm)?.length ?? 0;
    const lines = [
      `image: ${(imageBytes / 1e6).toFixed(0)} MB in ${manifest.layers.length} layers; ${NODES} nodes; upstream link tbf ${RATE}; node links ${NODE_RATE === undefined ? "unshaped" : `tbf ${NODE_RATE} both ways`}; --peer-fanout ${FANOUT ?? "default"}; ${cpus} cores`,
      "run      nodes  median node   vs one node   last node has it   vs one node   upstream bytes / image   bytes from peers   ferry CPU",
      ...results.map(
        (r) =>
          `${r.run.padEnd(8)} ${String(r.nodes).padStart(5)}  ${r.medianSeconds.toFixed(1).padStart(9)} s   ${(r.medianSeconds / alone.seconds).toFixed(2).padStart(9)}x  ${r.seconds.toFixed(1).padStart(14)} s   ${(r.seconds / alone.seconds).toFixed(2).padStart(9)}x   ${(r.upstreamBytes / imageBytes).toFixed(2).padStart(20)}x   ${(r.fromPeers / 1e6).toFixed(0).padStart(13)} MB   ${r.cpuSeconds.toFixed(0).padStart(7)} s${Object.keys(r.peerErrors).length > 0 ? `   peer errors ${JSON.stringify(r.peerErrors)}` : ""}`,
      ),
      `node stores in ${NODE_DIR}; load average at the end ${(await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ")}`,
      NODE_RATE === undefined
        ? "targets (shared): upstream bytes <= 1.10x the image; last node <= 1.50x one node's time"
        : "targets (shared): upstream bytes <= 1.10x the image; median node <= 1.50x and last node <= 2.00x one node's time",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    if (process.env.BENCH_JSON)
      process.stdout.write(`${JSON.stringify({ imageBytes, results })}\n`);
  } finally {
    await fleet.close();
  }
}

await main();
