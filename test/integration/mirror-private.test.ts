// The mirror's access model against a real token-auth Distribution registry (public/* anonymous,
// private/* needs login): a private image pulled into the shared store is never served to
// anonymous clients (under its own name or another's), public images are, even after the
// upstream is gone and the mirror restarted, and `--auth-file` clients get what their rules allow.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, type FileSpec, MediaType, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningTokenServer, startTokenServer } from "../fixtures/token-server.ts";
import {
  describeRun,
  ferry,
  isolatedEnv,
  removeDir,
  startFerry,
  tempDir,
  untilLogged,
} from "./cli.ts";

const execFileAsync = promisify(execFile);
const BOB = { user: "bob", password: "pw-bob-Zr84k" };
const ALICE = { user: "alice", password: "pw-alice-Q7v1x" }; // mirror user: private/*
const DAVE = { user: "dave", password: "pw-dave-K2m9w" }; // mirror user: public/* only
const ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest].join(", ");
const sha256hex = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");
const basic = (u: { user: string; password: string }, password = u.password) =>
  `Basic ${Buffer.from(`${u.user}:${password}`).toString("base64")}`;
const layer = (name: string): FileSpec[] => [
  { path: `etc/${name}-release`, content: `${name}\n` },
  { path: `app/${name}.bin`, size: 3_000, seed: name },
];

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: ACCEPT, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

interface MirrorProcess {
  url: string;
  host: string;
  stop(): Promise<void>;
}

describe("ferry mirror: private images in a shared store", () => {
  let tokens: RunningTokenServer;
  let upstream: RunningRegistry;
  let upstreamStopped = false;
  let work: string;
  let store: string;
  let pub: BuiltImage;
  let priv: BuiltImage;
  const running: MirrorProcess[] = [];

  async function startMirror(args: readonly string[], env: NodeJS.ProcessEnv) {
    const proc = startFerry(
      ["mirror", "--listen", "127.0.0.1:0", "--store", store, "--upstream", upstream.url, ...args],
      env,
    );
    let stderr = "";
    proc.child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    const url = await untilLogged(
      "the mirror listening",
      proc,
      () => stderr,
      /"msg":"mirror listening","url":"([^"]+)"/,
      15_000,
    );
    const stop = async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null)
        proc.child.kill("SIGTERM");
      await proc.result;
    };
    const mp = { url, host: new URL(url).host, stop };
    running.push(mp);
    return mp;
  }

  /** A HOME whose Docker config holds bob's upstream login. */
  async function bobHome(): Promise<NodeJS.ProcessEnv> {
    const dir = join(work, "home-bob");
    await mkdir(join(dir, ".docker"), { recursive: true, mode: 0o700 });
    const auth = Buffer.from(`${BOB.user}:${BOB.password}`).toString("base64");
    await writeFile(
      join(dir, ".docker", "config.json"),
      JSON.stringify({ auths: { [upstream.host]: { auth } } }),
      { mode: 0o600 },
    );
    return isolatedEnv(dir);
  }

  before(async () => {
    work = await tempDir("mirror-private");
    store = join(work, "store");
    tokens = await startTokenServer({
      users: { [BOB.user]: { password: BOB.password, pull: ["private/*"], push: ["*"] } },
      anonymousPull: ["public/*"],
    });
    upstream = await startRegistry({ extraConfig: { auth: tokens.registryAuth() } });
    const creds = { creds: `${BOB.user}:${BOB.password}` };
    [pub, priv] = await Promise.all([
      pushImage(upstream.host, "public/base", "v1", { layers: [layer("public")] }, creds),
      pushImage(upstream.host, "private/app", "v1", { layers: [layer("private")] }, creds),
    ]);
    // The private image reaches the shared store the ordinary way: `ferry pull` with a login.
    const pulled = await ferry(
      ["pull", "--store", store, `${upstream.host}/private/app:v1`],
      await bobHome(),
    );
    assert.equal(pulled.code, 0, describeRun(pulled));
  });

  after(async () => {
    await Promise.all(running.map((m) => m.stop()));
    if (!upstreamStopped) await upstream?.stop();
    await tokens?.stop();
    await removeDir(work);
  });

  const privateLayer = () => (priv.layers[0] as { digest: string }).digest;
  const notTheManifest = (r: Got) =>
    assert.ok(!r.body.equals(priv.manifest), "the private manifest was served");

  test("anonymous mirror: a cached private image is not served, under any name", async () => {
    const m = await startMirror([], isolatedEnv(join(work, "home-empty")));
    const byTag = await get(`${m.url}/v2/private/app/manifests/v1`);
    assert.equal(byTag.status, 401, byTag.body.toString());
    notTheManifest(byTag);
    const byDigest = await get(`${m.url}/v2/private/app/manifests/${priv.manifestDigest}`);
    assert.ok([401, 404].includes(byDigest.status), `status ${byDigest.status}`);
    notTheManifest(byDigest);
    // Its blobs: under the private name, under a public name before and after it is proven public.
    for (const name of ["private/app", "public/base"]) {
      const r = await get(`${m.url}/v2/${name}/blobs/${privateLayer()}`);
      assert.ok([401, 404].includes(r.status), `${name}: status ${r.status}`);
    }
    const proof = await get(`${m.url}/v2/public/base/manifests/v1`);
    assert.equal(proof.status, 200);
    for (const digest of [privateLayer(), priv.configDigest, priv.manifestDigest]) {
      const blob = await get(`${m.url}/v2/public/base/blobs/${digest}`);
      assert.equal(blob.status, 404, `public/base must not serve ${digest}`);
      const manifest = await get(`${m.url}/v2/public/base/manifests/${digest}`);
      assert.equal(manifest.status, 404, `public/base must not serve manifest ${digest}`);
    }
    // and asking again (now that the mirror has seen the store) still refuses
    assert.equal((await get(`${m.url}/v2/private/app/manifests/v1`)).status, 401);
    await m.stop();
  });

  test("anonymous mirror: a public image is served and its proof persisted in the store", async () => {
    const m = await startMirror([], isolatedEnv(join(work, "home-empty")));
    const manifest = await get(`${m.url}/v2/public/base/manifests/v1`);
    assert.equal(manifest.status, 200);
    assert.ok(manifest.body.equals(pub.manifest));
    for (const digest of [pub.configDigest, ...pub.layers.map((l) => l.digest)]) {
      const blob = await get(`${m.url}/v2/public/base/blobs/${digest}`);
      assert.equal(blob.status, 200);
      assert.equal(`sha256:${sha256hex(blob.body)}`, digest);
    }
    const persisted = JSON.parse(
      await readFile(join(store, "ferry", "mirror", "public.json"), "utf8"),
    ) as { repositories: string[] };
    assert.deepEqual(persisted.repositories, [`${upstream.host}/public/base`]);
    await m.stop();
  });

  test("--auth-file: Basic challenge, per-repository rules, wrong passwords", async () => {
    const authFile = join(work, "mirror-auth.yaml");
    await writeFile(
      authFile,
      [
        "users:",
        `  ${ALICE.user}:`,
        `    passwordSha256: ${sha256hex(ALICE.password)}`,
        `    repositories: ["${upstream.host}/private"]`,
        `  ${DAVE.user}:`,
        `    passwordSha256: ${sha256hex(DAVE.password)}`,
        `    repositories: ["${upstream.host}/public"]`,
        `anonymous: ["${upstream.host}/public"]`,
        "",
      ].join("\n"),
    );
    const m = await startMirror(["--auth-file", authFile], await bobHome());
    const base = await get(`${m.url}/v2/`);
    assert.equal(base.status, 401);
    assert.equal(base.headers["www-authenticate"], 'Basic realm="ferry-mirror"');
    assert.equal((await get(`${m.url}/v2/`, { authorization: basic(ALICE) })).status, 200);
    assert.equal((await get(`${m.url}/v2/`, { authorization: basic(ALICE, "nope") })).status, 401);

    const url = `${m.url}/v2/private/app/manifests/v1`;
    const anon = await get(url);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers["www-authenticate"], 'Basic realm="ferry-mirror"');
    notTheManifest(anon);
    const wrong = await get(url, { authorization: basic(ALICE, "pw-wrong") });
    assert.equal(wrong.status, 401);
    notTheManifest(wrong);
    const denied = await get(url, { authorization: basic(DAVE) });
    assert.equal(denied.status, 403);
    assert.match(denied.body.toString(), /DENIED/);
    notTheManifest(denied);
    const allowed = await get(url, { authorization: basic(ALICE) });
    assert.equal(allowed.status, 200);
    assert.ok(allowed.body.equals(priv.manifest));
    // dave may read public/*, but the private layer is not in it
    const leak = await get(`${m.url}/v2/public/base/blobs/${privateLayer()}`, {
      authorization: basic(DAVE),
    });
    assert.equal(leak.status, 404);
    // anonymous clients still read public/*
    assert.equal((await get(`${m.url}/v2/public/base/manifests/v1`)).status, 200);

    // a real client: skopeo logs in with the Basic challenge and copies the private image
    const dest = join(work, "copied");
    await execFileAsync("skopeo", [
      "--insecure-policy",
      "copy",
      "--src-tls-verify=false",
      "--src-creds",
      `${ALICE.user}:${ALICE.password}`,
      `docker://${m.host}/private/app:v1`,
      `dir:${dest}`,
    ]);
    const copied = await readFile(join(dest, privateLayer().slice("sha256:".length)));
    assert.equal(`sha256:${sha256hex(copied)}`, privateLayer());
    await m.stop();
  });

  test("public images keep being served from the store with the upstream gone, across restarts", async () => {
    await upstream.stop();
    upstreamStopped = true;
    const env = isolatedEnv(join(work, "home-empty"));
    for (let round = 0; round < 2; round++) {
      const m = await startMirror([], env);
      const manifest = await get(`${m.url}/v2/public/base/manifests/v1`);
      assert.equal(manifest.status, 200, manifest.body.toString());
      assert.ok(manifest.body.equals(pub.manifest));
      const byDigest = await get(`${m.url}/v2/public/base/manifests/${pub.manifestDigest}`);
      assert.equal(byDigest.status, 200);
      const blob = await get(`${m.url}/v2/public/base/blobs/${pub.configDigest}`);
      assert.equal(blob.status, 200);
      // and the private image stays refused: the upstream cannot prove it public now
      const privateManifest = await get(`${m.url}/v2/private/app/manifests/v1`);
      assert.notEqual(privateManifest.status, 200);
      notTheManifest(privateManifest);
      await m.stop();
    }
  });
});
