// Which registries `ferry mirror` connects to for its clients: its upstream and the ones it is
// configured for (--allow-ns, mirror.namespaces, *); any other ?ns= is 403 before any connection.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd, writeMirrorHosts } from "../fixtures/runtimes.ts";
import { describeRun, ferry, removeDir, startFerry, tempDir, until } from "./cli.ts";
import { errorCodes, get, mirrors, requestsOf, startMirror } from "./mirror-process.ts";

interface Recorded {
  userAgent: string;
  url: string;
}

/** A listener standing where a client points the mirror: it records every connection and request. */
async function recordingListener(): Promise<{
  host: string;
  connections: () => number;
  requests: Recorded[];
  server: Server;
}> {
  const requests: Recorded[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    requests.push({ userAgent: String(req.headers["user-agent"]), url: req.url ?? "" });
    res.writeHead(404).end();
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    requests,
    server,
  };
}

describe("ferry mirror serves only the registries it is configured for", () => {
  let work: string;
  let upstream: RunningRegistry;
  let allowed: RunningRegistry;
  let hello: BuiltImage;
  let listener: Awaited<ReturnType<typeof recordingListener>>;
  let containerd: RunningContainerd;

  before(async () => {
    work = await tempDir("mirror-ns");
    [upstream, allowed, listener, containerd] = await Promise.all([
      startRegistry(),
      startRegistry(),
      recordingListener(),
      startContainerd(),
    ]);
    hello = await pushImage(allowed.host, "lib/hello", "v1", {
      layers: [[{ path: "etc/hello", content: "hello\n" }]],
    });
  });

  after(async () => {
    await Promise.all(mirrors.map((m) => m.stop()));
    await containerd?.stop();
    await Promise.all([upstream?.stop(), allowed?.stop()]);
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
    await removeDir(work);
  });

  test("containerd (hosts.toml, ?ns=): an allowed registry is pulled through; another gets 403 and the mirror never connects to it", async () => {
    const m = await startMirror(join(work, "store-containerd"), [
      "--upstream",
      upstream.url,
      "--allow-ns",
      allowed.host,
    ]);
    const hostsDir = join(work, "certs.d");
    await writeMirrorHosts(hostsDir, allowed.host, m.url);
    await writeMirrorHosts(hostsDir, listener.host, m.url);
    const pull = (ref: string) =>
      containerd.ctr([
        "-n",
        "ferry-ns",
        "images",
        "pull",
        "--plain-http",
        "--hosts-dir",
        hostsDir,
        ref,
      ]);

    await pull(`${allowed.host}/lib/hello:v1`);
    const ls = (await containerd.ctr(["-n", "ferry-ns", "images", "ls"])).stdout;
    assert.match(ls, new RegExp(`${hello.manifestDigest}`), ls);

    // containerd falls back to the registry itself when the mirror refuses: that fails too.
    await assert.rejects(pull(`${listener.host}/lib/secret:v1`));
    const refused = requestsOf(m.log()).filter((r) => r.ns === listener.host);
    assert.ok(refused.length > 0, "containerd asked the mirror with ?ns=");
    assert.ok(
      refused.every((r) => r.status === 403),
      `every request for the unlisted registry is refused: ${JSON.stringify(refused)}`,
    );
    const served = requestsOf(m.log()).filter((r) => r.ns === allowed.host);
    assert.ok(served.some((r) => r.path === "/v2/lib/hello/manifests/v1" && r.status === 200));
    const fromFerry = listener.requests.filter((r) => r.userAgent.startsWith("ferry/"));
    assert.deepEqual(fromFerry, [], "the mirror never spoke to the unlisted registry");
  });

  test("403 DENIED with a Distribution error body, before any connection (HEAD too, blobs and tags too)", async () => {
    const m = await startMirror(join(work, "store-plain"), ["--upstream", upstream.url]);
    const before = listener.connections();
    const ns = `ns=${encodeURIComponent(listener.host)}`;
    for (const path of [
      `/v2/lib/x/manifests/v1?${ns}`,
      `/v2/lib/x/blobs/${hello.configDigest}?${ns}`,
      `/v2/lib/x/tags/list?${ns}`,
      "/v2/lib/x/manifests/v1?ns=localhost:22",
    ]) {
      const got = await get(`${m.url}${path}`);
      assert.equal(got.status, 403, path);
      assert.match(String(got.headers["content-type"]), /^application\/json/);
      assert.deepEqual(errorCodes(got.body), ["DENIED"], path);
      assert.match(got.body.toString(), /does not serve registry/);
      const head = await get(`${m.url}${path}`, { method: "HEAD" });
      assert.equal(head.status, 403, `HEAD ${path}`);
    }
    assert.equal(listener.connections(), before, "no connection to the named registry");
    // The upstream is served with or without ?ns= naming it.
    const own = await get(`${m.url}/v2/lib/none/tags/list?ns=${encodeURIComponent(upstream.host)}`);
    assert.equal(own.status, 404);
    assert.deepEqual(errorCodes(own.body), ["NAME_UNKNOWN"]);
  });

  test("mirror.namespaces in the config file, and * for any registry", async () => {
    const config = join(work, "config.yaml");
    await writeFile(config, `mirror:\n  namespaces: [${allowed.host}]\n`);
    const listed = await startMirror(join(work, "store-config"), [
      "--upstream",
      upstream.url,
      "--config",
      config,
    ]);
    const path = `/v2/lib/hello/manifests/v1?ns=${encodeURIComponent(allowed.host)}`;
    assert.equal((await get(`${listed.url}${path}`)).status, 200);
    const other = `/v2/lib/x/manifests/v1?ns=${encodeURIComponent(listener.host)}`;
    assert.equal((await get(`${listed.url}${other}`)).status, 403);

    const any = await startMirror(join(work, "store-any"), [
      "--upstream",
      upstream.url,
      "--allow-ns",
      "*",
    ]);
    assert.equal((await get(`${any.url}${path}`)).status, 200);
  });

  test("a bad --allow-ns or mirror.namespaces entry is a usage error naming it", async () => {
    const store = ["--store", join(work, "store-bad"), "--listen", "127.0.0.1:0"];
    const flag = await ferry(["mirror", ...store, "--allow-ns", "ok.example,169.254.169.254"]);
    assert.equal(flag.code, 2, describeRun(flag));
    assert.match(flag.stderr, /--allow-ns: "169\.254\.169\.254" is link-local/);
    assert.doesNotMatch(flag.stderr, /\n\s+at /, "no stack trace");
    const config = join(work, "bad.yaml");
    await writeFile(config, "mirror:\n  namespaces: [https://registry.example/v2]\n");
    const file = await ferry(["mirror", ...store, "--config", config]);
    assert.equal(file.code, 2, describeRun(file));
    assert.match(file.stderr, /mirror\.namespaces .*not a registry host/);
    // An upstream at a metadata address is refused at start (nothing is connected to).
    const metadata = startFerry(["mirror", ...store, "--upstream", "http://169.254.169.254"]);
    let said = "";
    metadata.child.stderr?.on("data", (d: Buffer) => {
      said += d.toString("utf8");
    });
    await until(
      "ferry mirror to exit or listen",
      () => metadata.child.exitCode !== null || said.includes("mirror listening") || undefined,
    );
    if (metadata.child.exitCode === null) metadata.child.kill("SIGTERM");
    const upstreamRun = await metadata.result;
    assert.equal(upstreamRun.code, 2, describeRun(upstreamRun));
    assert.match(
      upstreamRun.stderr,
      /--upstream http:\/\/169\.254\.169\.254: the host is link-local/,
    );
  });
});
