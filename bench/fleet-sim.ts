/**
 * `node bench/fleet-sim.ts`: a discrete-event model of a fleet rollout (docs/fleet-scale.md),
 * for fleets too large to run here. Every node asks for every blob of the image at t = 0.
 * Per blob, its owner (a random node: rendezvous hashing) fetches it from the registry; the
 * others join a relay tree in the order they ask (breadth first: the owner serves `fanOut`
 * peers and points the rest at them, and so on down), or all fetch from the owner ("one-hop",
 * ferry before relaying; blobs under 1 MiB always). Links are fluid: each transfer gets the smaller of its sender's
 * uplink share (split evenly over the sender's active transfers), its receiver's downlink
 * share, and, while the sender is still receiving the blob itself, the sender's own rate (a
 * relay cannot pass on bytes it has not got). Rates are recomputed at every completion.
 * A node holds back a blob's last byte until it has verified the blob, so a receiver
 * completes at the earliest `hopSeconds` after its sender. Prints, per fleet: time to the
 * median and the last node, registry egress / image, bytes each node uploads.
 *
 * Calibration (docs/fleet-scale.md): `hopSeconds` and the per-node `startSeconds` are fitted
 * to the measured 16-node runs of bench/fleet.ts; payload goodput is the link rate times
 * 1448/1514 (TCP payload per Ethernet frame).
 *
 * SIM_CASE=calibrate|scale (default both); SIM_JSON=1 adds the rows as JSON.
 */

import { SMALL_BLOB_BYTES } from "../src/peer/index.ts";

const GOODPUT = 1448 / 1514;

export interface SimConfig {
  nodes: number;
  /** Each node's link, both ways, bits/s. */
  nodeBits: number;
  /** The registry's link, bits/s. */
  registryBits: number;
  /** Blob sizes in bytes (the image). */
  blobs: number[];
  /** Peers one node serves a blob at once; Infinity with design "one-hop". */
  fanOut: number;
  design: "relay" | "one-hop";
  /** Delay a relay adds per level: its receive, verify, commit and release of the last byte. */
  hopSeconds: number;
  /** Per node before its first byte: manifest, connection, redirects. */
  startSeconds: number;
  seed: number;
}

export interface SimResult {
  nodes: number;
  lastSeconds: number;
  medianSeconds: number;
  aloneSeconds: number;
  registryBytes: number;
  imageBytes: number;
  uploadMeanBytes: number;
  uploadMaxBytes: number;
  depth: number;
}

interface Flow {
  blob: number;
  /** -1: the registry. */
  from: number;
  to: number;
  parent: Flow | undefined;
  left: number;
  rate: number;
  /** When its bytes are all there (fluid), and when the receiver commits (after its sender). */
  drained: number | undefined;
  done: number | undefined;
  depth: number;
}

/** A small seeded PRNG (mulberry32): the same fleet every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled(n: number, rnd: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j] as number, a[i] as number];
  }
  return a;
}

/** The transfers of one rollout: per blob, a tree over the nodes in the order they ask. */
function plan(c: SimConfig): Flow[] {
  const rnd = random(c.seed);
  const flows: Flow[] = [];
  for (const [blob, size] of c.blobs.entries()) {
    const order = shuffled(c.nodes, rnd); // order[0] owns the blob
    const into: Flow[] = [];
    for (const [i, node] of order.entries()) {
      // A small blob goes to every asker from its owner, as in ferry (fan-out.ts).
      const oneHop = c.design === "one-hop" || size < SMALL_BLOB_BYTES;
      const parentIndex = i === 0 ? -1 : oneHop ? 0 : Math.floor((i - 1) / c.fanOut);
      const parent = parentIndex < 0 ? undefined : into[parentIndex];
      const flow: Flow = {
        blob,
        from: parentIndex < 0 ? -1 : (order[parentIndex] as number),
        to: node,
        parent,
        left: size,
        rate: 0,
        drained: undefined,
        done: undefined,
        depth: parent === undefined ? 0 : parent.depth + 1,
      };
      into.push(flow);
      flows.push(flow);
    }
  }
  // Parents before children: rates are set top-down.
  return flows.sort((a, b) => a.depth - b.depth);
}

export function simulate(c: SimConfig): SimResult {
  const up = (c.nodeBits / 8) * GOODPUT;
  const registry = (c.registryBits / 8) * GOODPUT;
  const flows = plan(c);
  const imageBytes = c.blobs.reduce((s, b) => s + b, 0);
  const sending = new Int32Array(c.nodes);
  const receiving = new Int32Array(c.nodes);
  const uploaded = new Float64Array(c.nodes);
  let now = c.startSeconds;
  let active = flows.filter((f) => f.left > 0);
  while (active.length > 0) {
    sending.fill(0);
    receiving.fill(0);
    let fromRegistry = 0;
    for (const f of active) {
      if (f.from < 0) fromRegistry++;
      else sending[f.from] = (sending[f.from] as number) + 1;
      receiving[f.to] = (receiving[f.to] as number) + 1;
    }
    for (const f of active) {
      const share = f.from < 0 ? registry / fromRegistry : up / (sending[f.from] as number);
      let rate = Math.min(share, up / (receiving[f.to] as number));
      // A relay passes on only what it has: no faster than it receives while it receives.
      if (f.parent !== undefined && f.parent.drained === undefined)
        rate = Math.min(rate, f.parent.rate);
      f.rate = rate;
    }
    let step = Number.POSITIVE_INFINITY;
    for (const f of active) step = Math.min(step, f.left / f.rate);
    now += step;
    const still: Flow[] = [];
    for (const f of active) {
      const moved = f.rate * step;
      f.left -= moved;
      if (f.from >= 0) uploaded[f.from] = (uploaded[f.from] as number) + moved;
      // Rounding: a transfer within a byte of its end has ended.
      if (f.left <= 1) {
        f.left = 0;
        f.drained = now;
      } else still.push(f);
    }
    active = still;
  }
  // The last byte follows the sender's commit, one hop later per level.
  for (const f of flows) {
    const after = f.parent?.done === undefined ? 0 : f.parent.done + c.hopSeconds;
    f.done = Math.max(f.drained ?? now, after);
  }
  const finish = new Float64Array(c.nodes);
  for (const f of flows) finish[f.to] = Math.max(finish[f.to] as number, f.done as number);
  const sorted = [...finish].sort((a, b) => a - b);
  const registryBytes = flows.filter((f) => f.from < 0).reduce((s, f) => s + c.blobs[f.blob]!, 0);
  const alone = c.startSeconds + imageBytes / Math.min(up, registry);
  return {
    nodes: c.nodes,
    lastSeconds: sorted.at(-1) as number,
    medianSeconds: sorted[Math.floor((sorted.length - 1) / 2)] as number,
    aloneSeconds: alone,
    registryBytes,
    imageBytes,
    uploadMeanBytes: uploaded.reduce((s, u) => s + u, 0) / c.nodes,
    uploadMaxBytes: Math.max(...uploaded),
    depth: Math.max(...flows.map((f) => f.depth)),
  };
}

const MB = 1e6;
/** bench/fleet.ts's BENCH_IMAGE=layer80, as pushed (sizes of its three layers and config). */
export const LAYER80 = [80_001_536, 2_001_920, 201_728, 654];

/** Fitted to the 16-node runs (docs/fleet-scale.md). */
export const CALIBRATED = { hopSeconds: 0.55, startSeconds: 0.3 };

function row(label: string, r: SimResult): string {
  const alone = r.aloneSeconds;
  return [
    label.padEnd(44),
    String(r.nodes).padStart(6),
    String(r.depth).padStart(5),
    `${r.medianSeconds.toFixed(1)} s (${(r.medianSeconds / alone).toFixed(2)}x)`.padStart(18),
    `${r.lastSeconds.toFixed(1)} s (${(r.lastSeconds / alone).toFixed(2)}x)`.padStart(18),
    `${(r.registryBytes / r.imageBytes).toFixed(2)}x`.padStart(9),
    `${(r.uploadMeanBytes / MB).toFixed(0)} / ${(r.uploadMaxBytes / MB).toFixed(0)} MB`.padStart(
      16,
    ),
  ].join("  ");
}

function main(): void {
  const which = (process.env.SIM_CASE ?? "calibrate,scale").split(",");
  const rows: Array<{ label: string; result: SimResult }> = [];
  const base = { ...CALIBRATED, seed: 21 };
  if (which.includes("calibrate")) {
    const shaped = { nodes: 16, nodeBits: 50e6, registryBits: 50e6, blobs: LAYER80 };
    const alone = simulate({ ...base, ...shaped, nodes: 1, fanOut: 1, design: "relay" });
    rows.push({ label: "16 x 50 Mbit, alone", result: alone });
    rows.push({
      label: "16 x 50 Mbit, one-hop",
      result: simulate({ ...base, ...shaped, fanOut: Infinity, design: "one-hop" }),
    });
    for (const fanOut of [1, 2, 4])
      rows.push({
        label: `16 x 50 Mbit, relay fan-out ${fanOut}`,
        result: simulate({ ...base, ...shaped, fanOut, design: "relay" }),
      });
  }
  if (which.includes("scale")) {
    const image = [960 * MB, 30 * MB, 10 * MB];
    const big = { nodeBits: 10e9, registryBits: 1e9, blobs: image };
    for (const nodes of [1_000, 10_000]) {
      rows.push({
        label: `${nodes} x 10 Gbit, 1 Gbit registry, one-hop`,
        result: simulate({ ...base, ...big, nodes, fanOut: Infinity, design: "one-hop" }),
      });
      for (const fanOut of [4, 10])
        rows.push({
          label: `${nodes} x 10 Gbit, 1 Gbit registry, relay ${fanOut}`,
          result: simulate({ ...base, ...big, nodes, fanOut, design: "relay" }),
        });
    }
  }
  const header = [
    "fleet".padEnd(44),
    "nodes".padStart(6),
    "depth".padStart(5),
    "median node".padStart(18),
    "last node".padStart(18),
    "registry".padStart(9),
    "upload mean/max".padStart(16),
  ].join("  ");
  process.stdout.write(`${[header, ...rows.map((r) => row(r.label, r.result))].join("\n")}\n`);
  process.stdout.write(
    `(x: vs one node alone over the same links; hop ${base.hopSeconds} s, start ${base.startSeconds} s)\n`,
  );
  if (process.env.SIM_JSON) process.stdout.write(`${JSON.stringify(rows)}\n`);
}

if (process.argv[1] === import.meta.filename) main();
