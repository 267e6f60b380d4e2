/**
 * Start-up of a repeat pull (the image is already in the store, so nearly all of it is
 * start-up): the bundle (`node bin/ferry.js`) and any single executables given, against
 * `node -e 0`. Wall time and CPU time (user + system, from /usr/bin/time), medians.
 *
 *   npm run bench:startup -- [EXECUTABLE...]      e.g. npm run bench:startup -- dist/sea/ferry
 *   RUNS=21 (default)
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pushImage } from "../test/fixtures/images.ts";
import { startRegistry } from "../test/fixtures/registry.ts";

const RUNS = Number(process.env.RUNS ?? 21);
const ROOT = resolve(import.meta.dirname, "..");

/** Wall and CPU milliseconds of one run; fails on a non-zero exit. */
function timed(argv: readonly string[]): { wall: number; cpu: number } {
  const started = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S", ...argv], { encoding: "utf8" });
  const wall = performance.now() - started;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
  const [user = 0, system = 0] = (r.stderr.trim().split("\n").pop() ?? "").split(" ").map(Number);
  return { wall, cpu: (user + system) * 1000 };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

const work = await mkdtemp(join(tmpdir(), "ferry-startup-"));
const registry = await startRegistry();
try {
  const ref = `${registry.host}/startup/app:v1`;
  await pushImage(registry.host, "startup/app", "v1", {
    layers: [[{ path: "etc/app-release", content: "app 1.0\n" }]],
  });
  const pull = ["pull", "-q", ref, "--store", join(work, "store")];
  const variants: Record<string, string[]> = {
    "node -e 0": [process.execPath, "-e", "0"],
    "bundle (node bin/ferry.js)": [process.execPath, join(ROOT, "bin/ferry.js"), ...pull],
  };
  for (const exe of process.argv.slice(2)) variants[exe] = [resolve(exe), ...pull];
  // One untimed run each: the store gets the image, the page cache the executables.
  for (const argv of Object.values(variants)) timed(argv);
  const runs: Record<string, { wall: number[]; cpu: number[] }> = {};
  for (let i = 0; i < RUNS; i++) {
    for (const [name, argv] of Object.entries(variants)) {
      const { wall, cpu } = timed(argv);
      runs[name] ??= { wall: [], cpu: [] };
      runs[name].wall.push(wall);
      runs[name].cpu.push(cpu);
    }
  }
  const base = runs["node -e 0"] ?? { wall: [], cpu: [] };
  for (const [name, r] of Object.entries(runs)) {
    const wall = median(r.wall);
    const cpu = median(r.cpu);
    process.stdout.write(
      `${name.padEnd(30)} wall ${wall.toFixed(0)} ms (+${(wall - median(base.wall)).toFixed(0)})  cpu ${cpu.toFixed(0)} ms (+${(cpu - median(base.cpu)).toFixed(0)})\n`,
    );
  }
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
