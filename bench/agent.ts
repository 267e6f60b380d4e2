/**
 * `npm run bench:agent`: warming a list of 8 images (sharing a base layer) into containerd,
 * three ways, in one run, alternating, medians:
 *   - `ferry warm -f LIST --target containerd --concurrency 4` (the CRI image service, 4 at once)
 *   - a sequential `ctr images pull` loop over the same list (what people script by hand)
 *   - `ferry warm` again, with containerd pulling through a ferry mirror (hosts.toml)
 * Each run gets a fresh containerd (cold content store) and, for the mirror, a fresh mirror store.
 * Reports wall time, ratios, and the registry's blob bytes (its access log) per run.
 * Not a test: it asserts nothing.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { type FileSpec, pushImage } from "../test/fixtures/images.ts";
import { startRegistry } from "../test/fixtures/registry.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const FERRY = join(ROOT, "bin", "ferry.js");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const IMAGES = 8;

interface Containerd {
  socket: string;
  stop(): Promise<void>;
}

/** A containerd with its own root; with `mirrorFor`, its CRI pulls that registry through a mirror. */
async function startContainerd(
  dir: string,
  mirror?: { registry: string; url: string },
): Promise<Containerd> {
  const socket = join(dir, "containerd.sock");
  let config = `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n`;
  if (mirror !== undefined) {
    const hosts = join(dir, "certs.d", mirror.registry);
    await mkdir(hosts, { recursive: true });
    await writeFile(
      join(hosts, "hosts.toml"),
      `server = "http://${mirror.registry}"\n[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    config += `[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${dir}/certs.d"\n`;
  }
  await writeFile(join(dir, "config.toml"), config);
  const log = openSync(join(dir, "containerd.log"), "a");
  const child = spawn("containerd", ["--config", join(dir, "config.toml")], {
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  for (let i = 0; i < 200; i++) {
    try {
      await run("ctr", ["-a", socket, "version"]);
      return { socket, stop: () => stop(child) };
    } catch {
      await sleep(50);
    }
  }
  await stop(child);
  throw new Error(`containerd did not start; see ${dir}/containerd.log`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}

async function startMirror(
  store: string,
  upstream: string,
): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      FERRY,
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--upstream",
      `http://${upstream}`,
      "--store",
      store,
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let buffered = "";
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stderr?.on("data", (d: Buffer) => {
      buffered += d.toString();
      const m = /"msg":"mirror listening","url":"([^"]+)"/.exec(buffered);
      if (m !== null) resolveUrl(m[1] as string);
    });
    child.once("exit", () => reject(new Error(`mirror exited: ${buffered}`)));
  });
  return { url, stop: () => stop(child) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  await run("bash", [join(ROOT, "scripts", "services.sh"), "install"]);
  const registry = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), "ferry-bench-agent-"));
  try {
    const base: FileSpec[] = [{ path: "usr/lib/base.bin", size: 40_000_000, seed: "base" }];
    const refs: string[] = [];
    let imageBytes = 0;
    const unique = new Set<string>();
    for (let i = 0; i < IMAGES; i++) {
      const built = await pushImage(registry.host, `bench/app${i}`, "v1", {
        layers: [base, [{ path: `app/${i}.bin`, size: 10_000_000, seed: `app${i}` }]],
        compression: "zstd",
      });
      refs.push(`${registry.host}/bench/app${i}:v1`);
      for (const b of [...built.layers, { digest: built.configDigest, size: 0 }]) {
        if (!unique.has(b.digest)) imageBytes += b.size;
        unique.add(b.digest); // layers and configs: every blob the registry serves
      }
    }
    const list = join(work, "images.txt");
    await writeFile(list, `${refs.join("\n")}\n`);
    const blobBytes = async () => (await registry.blobGets()).reduce((s, g) => s + g.bytes, 0);
    const times = { ferry: [] as number[], ctr: [] as number[], mirror: [] as number[] };
    const bytes = { ferry: [] as number[], ctr: [] as number[], mirror: [] as number[] };
    const mirrorFetches: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      for (const way of ["ferry", "ctr", "mirror"] as const) {
        const dir = await mkdtemp(join(work, `${way}-`));
        const mirror =
          way === "mirror"
            ? await startMirror(join(dir, "mirror-store"), registry.host)
            : undefined;
        const containerd = await startContainerd(
          dir,
          mirror ? { registry: registry.host, url: mirror.url } : undefined,
        );
        const before = await blobBytes();
        try {
          const seconds = await timed(async () => {
            if (way === "ctr") {
              for (const ref of refs) {
                await run("ctr", [
                  "-a",
                  containerd.socket,
                  "-n",
                  "k8s.io",
                  "images",
                  "pull",
                  "--plain-http",
                  ref,
                ]);
              }
            } else {
              await run(process.execPath, [
                FERRY,
                "warm",
                "-f",
                list,
                "--target",
                "containerd",
                "--cri-endpoint",
                `unix://${containerd.socket}`,
                "--concurrency",
                "4",
                "--store",
                join(dir, "store"),
              ]);
            }
          });
          await sleep(300); // the registry writes an access line after the last byte
          if (mirror !== undefined) {
            // Check the pulls really went through the mirror: it fetched every blob itself.
            const metrics = await (await fetch(`${mirror.url}/metrics`)).text();
            const fetched = /ferry_mirror_upstream_fetches_total\{kind="blob"\} (\d+)/.exec(
              metrics,
            )?.[1];
            mirrorFetches.push(Number(fetched ?? 0));
          }
          times[way].push(seconds);
          bytes[way].push((await blobBytes()) - before);
        } finally {
          await containerd.stop();
          await mirror?.stop();
          await rm(dir, { recursive: true, force: true });
        }
      }
    }
    const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
    const line = (name: string, way: keyof typeof times) =>
      `${name.padEnd(44)} ${median(times[way]).toFixed(2).padStart(6)} s   registry blob bytes ${mb(median(bytes[way])).padStart(7)} (${(median(bytes[way]) / imageBytes).toFixed(2)}x the unique blobs)`;
    process.stdout.write(
      [
        `${IMAGES} images sharing a 40 MB base layer; unique layer bytes ${mb(imageBytes)}, ${unique.size} distinct blobs; ${RUNS} runs each, medians`,
        line("ferry warm --target containerd --concurrency 4", "ferry"),
        line("sequential ctr images pull loop", "ctr"),
        line("ferry warm, containerd through a ferry mirror", "mirror"),
        `ferry warm vs ctr loop: ${(median(times.ctr) / median(times.ferry)).toFixed(2)}x faster (target >= 2x)`,
        `through the mirror vs direct: ${(median(times.mirror) / median(times.ferry)).toFixed(2)}x the time; the mirror fetched ${median(mirrorFetches)} of ${unique.size} blobs upstream (each once)`,
      ].join("\n") + "\n",
    );
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
