// Real clients pulling through `ferry mirror`: the Docker engine (registry-mirrors), containerd
// (hosts.toml, ?ns=) and skopeo (registries.conf mirror), each then running or reading the image.
import assert from "node:assert/strict";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  type RunningContainerd,
  type RunningDockerd,
  startContainerd,
  startDockerd,
  writeMirrorHosts,
} from "../fixtures/runtimes.ts";
import {
  describeRun,
  type FerryProcess,
  type FerryResult,
  removeDir,
  startFerry,
  tempDir,
  untilLogged,
} from "./cli.ts";
import { requestsOf } from "./mirror-process.ts";

const execFileAsync = promisify(execFile);

interface UpstreamGet {
  path: string;
  status: number;
  userAgent: string;
}

/** Manifest and blob GETs in a Distribution access log, with the client's User-Agent. */
async function upstreamGets(registry: RunningRegistry, name: string): Promise<UpstreamGet[]> {
  await registry.settled();
  const text = await readFile(registry.logFile, "utf8");
  const gets: UpstreamGet[] = [];
  const re =
    /"GET (\/v2\/(\S+)\/(?:blobs|manifests)\/\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;
  for (const line of text.split("\n")) {
    const m = re.exec(line);
    if (m === null || m[2] !== name) continue;
    gets.push({ path: m[1] ?? "", status: Number(m[3]), userAgent: m[4] ?? "" });
  }
  return gets;
}

function digestsOf(image: BuiltImage): string[] {
  return [image.configDigest, ...image.layers.map((l) => l.digest)];
}

function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

describe("docker, containerd and skopeo pulling through ferry mirror", () => {
  let hub: RunningRegistry; // stands in for Docker Hub: the mirror's default upstream
  let far: RunningRegistry; // another registry, reached through the mirror only with ?ns=
  let containerd: RunningContainerd;
  let dockerd: RunningDockerd;
  let mirror: FerryProcess;
  let mirrorUrl: string;
  let mirrorLog = "";
  let work: string;
  let busybox: BuiltImage;
  let hello: BuiltImage;
  let tool: BuiltImage;

  before(async () => {
    work = await tempDir("mirror-clients");
    const base = await busyboxLayer(["sh", "echo", "cat"]);
    [hub, far] = await Promise.all([startRegistry(), startRegistry()]);
    [busybox, hello, tool, containerd] = await Promise.all([
      // As Docker Hub serves it: Docker media types.
      pushImage(hub.host, "library/busybox", "latest", { layers: [base], mediaTypes: "docker" }),
      pushImage(far.host, "lib/hello", "v1", {
        // One layer, so no blob is shared with busybox (the mirror would have it already).
        layers: [[...base, { path: "etc/message", content: "hello through ferry\n" }]],
      }),
      pushImage(hub.host, "library/tool", "v1", {
        layers: [[{ path: "usr/share/tool.bin", size: 500_000 }]],
      }),
      startContainerd(),
    ]);
    mirror = startFerry([
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--upstream",
      hub.url,
      "--allow-ns",
      far.host,
      "--store",
      join(work, "store"),
    ]);
    mirror.child.stderr?.on("data", (d: Buffer) => {
      mirrorLog += d.toString("utf8");
    });
    mirrorUrl = await untilLogged(
      "the mirror listening",
      mirror,
      () => mirrorLog,
      /"msg":"mirror listening"[^\n]*"url":"([^"]+)"/,
      15_000,
    );
    dockerd = await startDockerd(containerd.socket, { registryMirrors: [mirrorUrl] });
  });

  after(async () => {
    await dockerd?.stop();
    await containerd?.stop();
    let result: FerryResult | undefined;
    if (mirror !== undefined && mirror.child.exitCode === null) {
      mirror.child.kill("SIGTERM");
      result = await mirror.result;
    }
    await Promise.all([hub?.stop(), far?.stop()]);
    await removeDir(work);
    if (result !== undefined) assert.equal(result.code, 0, describeRun(result));
  });

  test("docker pull busybox goes to ferry (registry-mirrors), then docker run prints hi", async () => {
    const pulled = await dockerd.docker(["pull", "busybox"]);
    assert.match(pulled.stdout, new RegExp(`Digest: ${busybox.manifestDigest}`), pulled.stdout);
    assert.match(pulled.stdout, /docker\.io\/library\/busybox:latest/);

    const viaMirror = requestsOf(mirrorLog).filter((r) =>
      r.path.startsWith("/v2/library/busybox/"),
    );
    assert.ok(
      viaMirror.some((r) => r.path === "/v2/library/busybox/manifests/latest" && r.status === 200),
      `docker asked the mirror for the tag: ${JSON.stringify(viaMirror)}`,
    );
    assert.ok(
      viaMirror.every((r) => r.ns === null),
      "Docker's registry-mirrors sends no ?ns=: the default upstream is meant",
    );
    const blobPaths = viaMirror.filter((r) => r.path.includes("/blobs/")).map((r) => r.path);
    for (const d of digestsOf(busybox)) {
      assert.ok(blobPaths.includes(`/v2/library/busybox/blobs/${d}`), `docker fetched ${d}`);
    }
    const upstream = await upstreamGets(hub, "library/busybox");
    const blobGets = upstream.filter((g) => g.path.includes("/blobs/"));
    assert.deepEqual(
      blobGets.map((g) => g.path.slice(g.path.lastIndexOf("/") + 1)).sort(),
      digestsOf(busybox).sort(),
      "each blob reached the upstream once",
    );
    assert.ok(
      upstream.every((g) => g.userAgent.startsWith("ferry/")),
      `only ferry talked to the upstream: ${upstream.map((g) => g.userAgent).join(", ")}`,
    );

    const ran = await dockerd.docker(["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert.equal(ran.stdout, "hi\n");
  });

  test("containerd with hosts.toml pulls a non-default registry through ferry with ?ns=, then runs it", async () => {
    const hostsDir = join(work, "certs.d");
    await writeMirrorHosts(hostsDir, far.host, mirrorUrl);
    const ref = `${far.host}/lib/hello:v1`;
    await containerd.ctr([
      "-n",
      "ferry-mirror",
      "images",
      "pull",
      "--plain-http",
      "--hosts-dir",
      hostsDir,
      ref,
    ]);
    const ls = (await containerd.ctr(["-n", "ferry-mirror", "images", "ls"])).stdout;
    assert.ok(
      ls.split("\n").some((l) => l.startsWith(ref) && l.includes(hello.manifestDigest)),
      ls,
    );

    const viaMirror = requestsOf(mirrorLog).filter((r) => r.path.startsWith("/v2/lib/hello/"));
    assert.ok(viaMirror.length >= 1 + digestsOf(hello).length, JSON.stringify(viaMirror));
    assert.deepEqual(
      [...new Set(viaMirror.map((r) => r.ns))],
      [far.host],
      "every request names the registry with ?ns=",
    );
    for (const d of digestsOf(hello)) {
      assert.ok(
        viaMirror.some((r) => r.path === `/v2/lib/hello/blobs/${d}` && r.status === 200),
        `containerd fetched ${d} from the mirror`,
      );
    }
    const upstream = await upstreamGets(far, "lib/hello");
    assert.deepEqual(
      upstream
        .filter((g) => g.path.includes("/blobs/"))
        .map((g) => g.path.slice(g.path.lastIndexOf("/") + 1))
        .sort(),
      digestsOf(hello).sort(),
    );
    assert.ok(
      upstream.every((g) => g.userAgent.startsWith("ferry/")),
      `only ferry talked to the registry: ${upstream.map((g) => g.userAgent).join(", ")}`,
    );

    const ran = await containerd.ctr([
      "-n",
      "ferry-mirror",
      "run",
      "--rm",
      ref,
      `ferry-mirror-${process.pid}`,
      "cat",
      "/etc/message",
    ]);
    assert.equal(ran.stdout, "hello through ferry\n");
  });

  // skopeo sends no ?ns= (containers/image has no such convention), so through ferry it can only
  // reach the mirror's default upstream: a registries.conf mirror for that registry.
  test("skopeo with a registries.conf mirror for the default upstream is served by ferry", async () => {
    const conf = join(work, "registries.conf");
    const mirrorHost = new URL(mirrorUrl).host;
    await writeFile(
      conf,
      `[[registry]]\nlocation = "${hub.host}"\ninsecure = true\n\n` +
        `[[registry.mirror]]\nlocation = "${mirrorHost}"\ninsecure = true\n`,
    );
    const dest = join(work, "skopeo-tool");
    try {
      await execFileAsync("skopeo", [
        "--insecure-policy",
        "--registries-conf",
        conf,
        "copy",
        "--quiet",
        "--preserve-digests",
        `docker://${hub.host}/library/tool:v1`,
        `oci:${dest}:v1`,
      ]);
    } catch (err) {
      throw new Error(`skopeo failed: ${(err as { stderr?: string }).stderr ?? err}`);
    }
    const index = JSON.parse(await readFile(join(dest, "index.json"), "utf8")) as {
      manifests: Array<{ digest: string }>;
    };
    assert.equal(index.manifests[0]?.digest, tool.manifestDigest);
    for (const d of digestsOf(tool)) {
      assert.equal(sha256(await readFile(join(dest, "blobs", "sha256", d.slice(7)))), d);
    }
    const viaMirror = requestsOf(mirrorLog).filter((r) => r.path.startsWith("/v2/library/tool/"));
    for (const d of digestsOf(tool)) {
      assert.ok(
        viaMirror.some((r) => r.path === `/v2/library/tool/blobs/${d}` && r.status === 200),
        `skopeo fetched ${d} from the mirror: ${JSON.stringify(viaMirror)}`,
      );
    }
    const upstream = await upstreamGets(hub, "library/tool");
    assert.ok(
      upstream.every((g) => g.userAgent.startsWith("ferry/")),
      `only ferry talked to the upstream: ${upstream.map((g) => g.userAgent).join(", ")}`,
    );
  });
});
