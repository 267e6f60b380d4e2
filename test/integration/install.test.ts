// Installing ferry as a user would, from a fresh clone of this repository's HEAD: `npm ci`,
// then `npm install -g` of the checkout and of the `npm pack` tarball (each into its own
// --prefix), and the single executable (`npm run sea` + scripts/install.sh). Every installed
// `ferry` runs with the system's PATH, whose `node` may be older than 24, and pulls from a real
// Distribution registry. Needs the npm registry (npm ci, and the tarball's dependencies).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdir, readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { startContainerd } from "../fixtures/runtimes.ts";
import { type FerryProcess, type FerryResult, ndjson, removeDir, tempDir, until } from "./cli.ts";

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
/** A user's PATH: the system's `node` and `npm`, nothing from this checkout. */
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Runs a command to completion; fails the test with its output when it exits non-zero. */
async function sh(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const env = { ...process.env, PATH: SYSTEM_PATH, FERRY_STORE: undefined, ...options.env };
  try {
    const { stdout } = await execFileAsync(command, args, {
      cwd: options.cwd,
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    assert.fail(`${command} ${args.join(" ")} failed: ${e.message}\n${e.stdout}\n${e.stderr}`);
  }
}

/**
 * The Node version an npm-installed `ferry` runs on: the system's `node` (v20 on this machine)
 * hands over to the `node` dependency's Node 24; a system node of 24 or newer runs it itself.
 */
async function nodeRunning(dependencyNode: string): Promise<string> {
  const system = (await sh("node", ["--version"])).trim();
  if (Number(system.slice(1).split(".")[0]) >= 24) return system;
  return (await sh(dependencyNode, ["--version"])).trim();
}

/** Starts the installed `ferry` found on PATH (`bin` first), as a user's shell would. */
function startFerry(
  bin: string,
  args: readonly string[],
  extraEnv: Record<string, string> = {},
): FerryProcess {
  const env = {
    ...process.env,
    PATH: `${bin}:${SYSTEM_PATH}`,
    FERRY_STORE: undefined,
    ...extraEnv,
  };
  const child = spawn("ferry", args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => stdout.push(c));
  child.stderr.on("data", (c: Buffer) => stderr.push(c));
  const result = new Promise<FerryResult>((ok, fail) => {
    child.once("error", fail);
    child.once("close", (code, signal) =>
      ok({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      }),
    );
  });
  return { child, result };
}

function runFerry(bin: string, args: readonly string[]): Promise<FerryResult> {
  return startFerry(bin, args).result;
}

/** The URL a `ferry mirror` logs once it listens. */
async function listeningUrl(mirror: FerryProcess): Promise<string> {
  let log = "";
  mirror.child.stderr?.on("data", (c: Buffer) => {
    log += c.toString("utf8");
  });
  return until("the mirror to listen", () => {
    if (mirror.child.exitCode !== null) assert.fail(`ferry mirror exited: ${log}`);
    for (const line of log.split("\n")) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === "mirror listening") return entry.url;
    }
    return undefined;
  });
}

describe("installing ferry from a fresh clone", () => {
  let work: string;
  let clone: string;
  let head: string;
  let registry: RunningRegistry;
  let image: BuiltImage;
  let reference: string;

  before(async () => {
    work = await tempDir("install");
    clone = join(work, "ferry");
    const registryStarted = (async () => {
      registry = await startRegistry();
      reference = `${registry.host}/install/app:v1`;
      image = await pushImage(registry.host, "install/app", "v1", {
        // 2 MB: above the size pull hashes inline, so --hash-workers always starts the worker.
        layers: [
          [{ path: "etc/app-release", content: "app 1.0\n" }],
          [{ path: "app/data.bin", size: 2_000_000, seed: "install" }],
        ],
      });
    })();
    await sh("git", ["clone", "--quiet", ROOT, clone]);
    head = (await sh("git", ["-C", clone, "rev-parse", "HEAD"])).trim();
    // As the README says: npm ci (it brings Node 24 and builds the bundle and the status page).
    await sh("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: clone });
    await registryStarted;
  });
  after(async () => {
    await registry?.stop();
    await removeDir(work);
  });

  /** The installed `ferry` in `bin`: runs on Node 24, knows its commit, pulls, verified. */
  async function usable(bin: string, node: string): Promise<void> {
    const version = await runFerry(bin, ["version", "--json"]);
    assert.equal(version.code, 0, version.stderr);
    const report = JSON.parse(version.stdout) as Record<string, string>;
    assert.equal(report.commit, head);
    assert.equal(report.node, node);
    const store = join(work, `store-${Math.random().toString(36).slice(2)}`);
    const pulled = await runFerry(bin, ["pull", reference, "--store", store, "--json"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const done = ndjson(pulled.stdout).find((e) => e.event === "done");
    assert.equal(done?.digest, image.manifestDigest);
    assert.ok(
      (await readdir(join(store, "blobs", "sha256"))).includes(
        image.manifestDigest.slice("sha256:".length),
      ),
    );
    const unknown = await runFerry(bin, ["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  }

  test("npm install -g of the checkout puts a ferry on PATH that runs on Node 24 under the system's older node", async () => {
    const prefix = join(work, "global-checkout");
    await sh("npm", ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", clone]);
    assert.equal(await realpath(join(prefix, "bin", "ferry")), join(clone, "bin", "ferry.js"));
    const bin = join(prefix, "bin");
    await usable(bin, await nodeRunning(join(clone, "node_modules", "node", "bin", "node")));

    // A service manager's SIGTERM reaches ferry through the hand-over: it stops and exits 0.
    const mirror = startFerry(bin, [
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--store",
      join(work, "store-term"),
    ]);
    const url = await listeningUrl(mirror);
    assert.equal((await fetch(`${url}/v2/`)).status, 200);
    mirror.child.kill("SIGTERM");
    const stopped = await mirror.result;
    assert.equal(stopped.code, 0, stopped.stderr);
    await assert.rejects(fetch(`${url}/v2/`), "the Node 24 process stopped with the launcher");
  });

  test("npm install -g of the npm pack tarball: no sources, the bundle, its own Node 24", async () => {
    // npm pack runs `prepare` (the build) first, whose output shares stdout: list the directory.
    const packed = join(work, "packed");
    await mkdir(packed);
    await sh("npm", ["pack", "--pack-destination", packed], { cwd: clone });
    const [filename] = await readdir(packed);
    assert.equal(filename, "ferry-0.1.0.tgz");
    const prefix = join(work, "global-tarball");
    await sh("npm", [
      "install",
      "-g",
      "--prefix",
      prefix,
      "--no-audit",
      "--no-fund",
      join(packed, filename),
    ]);
    const installed = join(prefix, "lib", "node_modules", "ferry");
    const shipped = await readdir(installed);
    assert.ok(!shipped.includes("src"), `the package ships sources: ${shipped.join(" ")}`);
    assert.ok(shipped.includes("dist"));
    const node = join(installed, "node_modules", "node", "bin", "node");
    await usable(join(prefix, "bin"), await nodeRunning(node));
  });

  test("the single executable (npm run sea) pulls, with the hashing worker, and serves the status page; scripts/install.sh lays it out for systemd and cron", async () => {
    await sh("npm", ["run", "sea"], { cwd: clone });
    const prefix = join(work, "sea-prefix");
    const etc = join(work, "sea-etc");
    const env = { PREFIX: prefix, SYSCONFDIR: etc, UNITDIR: join(etc, "units") };
    await sh(join(clone, "scripts", "install.sh"), [], { cwd: clone, env });
    const bin = join(prefix, "bin");
    const node = (
      await sh(join(clone, "node_modules", "node", "bin", "node"), ["--version"])
    ).trim();
    await usable(bin, node);
    // The worker that hashes off the main thread is embedded too (not a file beside the exe).
    const store = join(work, "store-sea-workers");
    const pulled = await runFerry(bin, [
      "pull",
      reference,
      "--store",
      store,
      "--hash-workers",
      "always",
    ]);
    assert.equal(pulled.code, 0, pulled.stderr);

    const mirror = startFerry(bin, ["mirror", "--listen", "127.0.0.1:0", "--store", store]);
    try {
      const url = await listeningUrl(mirror);
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      const html = await page.text();
      const script = /src="\/?(assets\/main-[A-Za-z0-9]+\.js)"/.exec(html)?.[1];
      assert.ok(script !== undefined, html);
      const js = await fetch(`${url}/${script}`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get("content-type") ?? "", /javascript/);
      assert.ok((await js.arrayBuffer()).byteLength > 1000);
    } finally {
      mirror.child.kill("SIGTERM");
      await mirror.result;
    }

    // The CRI and containerd .proto definitions are embedded: warm a real containerd.
    const containerd = await startContainerd();
    try {
      const list = join(work, "sea-images.yaml");
      await writeFile(list, `images:\n  - ${reference}\n`);
      const warmed = await runFerry(bin, [
        "warm",
        "-f",
        list,
        "--target",
        "containerd",
        "--cri-endpoint",
        `unix://${containerd.socket}`,
        "--store",
        store,
      ]);
      assert.equal(warmed.code, 0, `${warmed.stdout}\n${warmed.stderr}`);
      const images = await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"]);
      assert.ok(images.stdout.split("\n").includes(reference), images.stdout);
    } finally {
      await containerd.stop();
    }

    // @kubernetes/client-node is compiled from its own asset at first use: the agent's
    // Kubernetes mode reaches the (in-memory) API server through it.
    const api = await startFakeApiServer();
    try {
      const { path: kubeconfig } = await api.kubeconfigFor("sea-agent");
      const agent = startFerry(
        bin,
        ["agent", "--kubernetes", "--target", "store", "--store", store, "--listen", "127.0.0.1:0"],
        { NODE_NAME: "sea-node", POD_NAMESPACE: "ferry-system", KUBECONFIG: kubeconfig },
      );
      try {
        await until("the agent's first Kubernetes API call", async () => {
          if (agent.child.exitCode !== null) assert.fail((await agent.result).stderr);
          return api.calls.some((c) => c.user === "sea-agent") ? true : undefined;
        });
      } finally {
        agent.child.kill("SIGTERM");
        await agent.result;
      }
    } finally {
      await api.stop();
    }

    // The unit names the installed executable, and systemd accepts it.
    const unit = join(etc, "units", "ferry-agent.service");
    assert.match(
      await readFile(unit, "utf8"),
      new RegExp(`^ExecStart=${bin}/ferry agent -c ${etc}/ferry/agent.yaml$`, "m"),
    );
    await sh("systemd-analyze", ["verify", unit]);
    const cron = await readFile(join(etc, "cron.d", "ferry-warm"), "utf8");
    assert.match(cron, new RegExp(`^PATH=${bin}:`, "m"));
    assert.match(cron, new RegExp(`ferry warm -f ${etc}/ferry/images.yaml `));
  });
});
