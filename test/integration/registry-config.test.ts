// ferry's YAML config (`--config FILE`) end to end: mirrors with fallback, a real pull-through
// cache as mirror, positioned config errors, TLS settings, and pull errors that explain themselves.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { lookup } from "node:dns/promises";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, type FileSpec, pushImage } from "../fixtures/images.ts";
import { startProxy } from "../fixtures/proxy.ts";
import { freePort, type RunningRegistry, startRegistry, toYaml } from "../fixtures/registry.ts";
import {
  describeRun,
  type FerryResult,
  ferry,
  isolatedEnv,
  ndjson,
  removeDir,
  tempDir,
  until,
} from "./cli.ts";

const execFileAsync = promisify(execFile);

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const layer = (name: string, size = 4_000): FileSpec[] => [
  { path: `etc/${name}-release`, content: `${name}\n` },
  { path: `app/${name}.bin`, size, seed: name },
];

interface AccessLine {
  method: string;
  path: string;
  status: number;
  agent: string;
}

const ACCESS_LINE = /"([A-Z]+) (\S+) HTTP\/[0-9.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

/** Every request in a Distribution registry's access log, with its User-Agent. */
async function accessLog(registry: RunningRegistry): Promise<AccessLine[]> {
  await registry.settled();
  const text = await readFile(registry.logFile, "utf8");
  const out: AccessLine[] = [];
  for (const line of text.split("\n")) {
    const m = ACCESS_LINE.exec(line);
    if (m) {
      out.push({ method: m[1] ?? "", path: m[2] ?? "", status: Number(m[3]), agent: m[4] ?? "" });
    }
  }
  return out;
}

/** A name other than "localhost" that resolves to 127.0.0.1 (e.g. this machine's hostname), if any. */
async function loopbackAlias(): Promise<string | undefined> {
  const name = hostname().toLowerCase();
  if (name === "localhost" || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) return undefined;
  try {
    const { address } = await lookup(name, { family: 4 });
    return address === "127.0.0.1" ? name : undefined;
  } catch {
    return undefined;
  }
}

/** A self-signed certificate for `name` and 127.0.0.1. */
async function selfSignedCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  await execFileAsync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name},IP:127.0.0.1`,
  ]);
  return { cert, key };
}

function httpsStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { rejectUnauthorized: false, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

/**
 * A Distribution registry serving https (`http.tls`) on 127.0.0.1. The registry fixture waits
 * for plain http, which a TLS listener answers with 400, hence this small launcher.
 */
async function startTlsRegistry(
  dir: string,
  tls: { cert: string; key: string },
): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const configFile = join(dir, "registry.yml");
  await writeFile(
    configFile,
    toYaml({
      version: 0.1,
      log: { level: "info", accesslog: { disabled: false } },
      storage: { filesystem: { rootdirectory: join(dir, "data") } },
      http: {
        addr: `127.0.0.1:${port}`,
        secret: "ferry-test-secret",
        tls: { certificate: tls.cert, key: tls.key },
      },
    }),
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", configFile], {
    stdio: "ignore",
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  await until(
    `the TLS registry answering on 127.0.0.1:${port}`,
    async () => {
      if (child.exitCode !== null) assert.fail(`the TLS registry on 127.0.0.1:${port} exited`);
      return (await httpsStatus(`https://127.0.0.1:${port}/v2/`)) === 200;
    },
    10_000,
  ).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { port, stop };
}

describe("ferry's registry configuration and pull errors", () => {
  let upstream: RunningRegistry;
  let mirror: RunningRegistry; // a pull-through cache of upstream
  let work: string;
  let app: BuiltImage;
  let mirrored: BuiltImage;
  let count = 0;
  const stoppers: Array<() => Promise<void>> = [];
  const TAGS = ["v1", "v2", "v3", "v4", "v5", "v6", "v7"];

  before(async () => {
    work = await tempDir("registry-config");
    upstream = await track(startRegistry());
    mirror = await track(startRegistry({ proxyRemoteUrl: upstream.url }));
    [app, mirrored] = await Promise.all([
      pushImage(upstream.host, "cfg/app", "v1", { layers: [layer("app")] }),
      pushImage(upstream.host, "cfg/mirrored", "v1", {
        layers: [layer("mirrored-base"), layer("mirrored-app")],
      }),
      // One after another: Distribution can fail (500) concurrent uploads of one blob to one repository.
      (async () => {
        for (const tag of TAGS) {
          await pushImage(upstream.host, "cfg/tags", tag, { layers: [layer("tags")] });
        }
      })(),
    ]);
  });

  /** Stopped in after(), whatever happens after it started. */
  async function track<T extends { stop(): Promise<void> }>(starting: Promise<T>): Promise<T> {
    const service = await starting;
    stoppers.push(() => service.stop());
    return service;
  }

  after(async () => {
    await Promise.all(stoppers.map((stop) => stop()));
    await removeDir(work);
  });

  /** A fresh HOME and store, and a config file with `yaml` when given. */
  async function setup(yaml?: string) {
    const dir = join(work, `case-${++count}`);
    await mkdir(dir, { recursive: true });
    const config = join(dir, "config.yaml");
    if (yaml !== undefined) await writeFile(config, yaml);
    return { dir, config, store: join(dir, "store"), env: isolatedEnv(dir) };
  }

  describe("mirrors", () => {
    test("a mirror that is down: the pull falls back to the registry, says so, exits 0", async () => {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const c = await setup(`registries:\n  "${upstream.host}":\n    mirrors: ["${dead}"]\n`);
      const ref = `${upstream.host}/cfg/app:v1`;
      const r = await ferry(["pull", "--config", c.config, "--store", c.store, ref], c.env);
      assertExit(r, 0);
      assert.match(
        r.stderr,
        new RegExp(
          `mirror ${escapeRegExp(dead)} failed .*using ${escapeRegExp(upstream.host)} directly`,
        ),
      );
      assert.ok(await exists(join(c.store, "blobs", "sha256", app.manifestDigest.slice(7))));
    });

    test("a pull-through cache as mirror: blobs come from the mirror; the registry sees them only via the mirror", async () => {
      const c = await setup(`registries:\n  "${upstream.host}":\n    mirrors: ["${mirror.url}"]\n`);
      const ref = `${upstream.host}/cfg/mirrored:v1`;
      const r = await ferry(["pull", "--config", c.config, "--store", c.store, ref], c.env);
      assertExit(r, 0);
      assert.doesNotMatch(r.stderr, /failed/);

      const blobs = [mirrored.configDigest, ...mirrored.layers.map((l) => l.digest)].sort();
      const fromMirror = (await mirror.blobGets()).filter((g) => g.name === "cfg/mirrored");
      assert.deepEqual(
        [...new Set(fromMirror.filter((g) => g.status === 200).map((g) => g.digest))].sort(),
        blobs,
        "every blob was served by the mirror",
      );
      const mirrorLog = (await accessLog(mirror)).filter((l) => l.path.includes("cfg/mirrored"));
      assert.ok(
        mirrorLog
          .filter((l) => l.agent.startsWith("ferry/"))
          .every((l) => l.path.includes(`ns=${encodeURIComponent(upstream.host)}`)),
        "ferry tells the mirror which registry it stands in for (?ns=)",
      );

      const upstreamLog = (await accessLog(upstream)).filter((l) =>
        l.path.includes("cfg/mirrored"),
      );
      assert.deepEqual(
        upstreamLog.filter((l) => l.agent.startsWith("ferry/")),
        [],
        "ferry itself never asked the registry",
      );
      const upstreamBlobGets = upstreamLog.filter(
        (l) => l.method === "GET" && l.path.includes("/blobs/"),
      );
      assert.ok(upstreamBlobGets.length > 0, "the mirror fetched the blobs from the registry");
    });
  });

  describe("invalid config", () => {
    test("an unknown key: exit 2, FILE:LINE:COL and the key", async () => {
      const c = await setup(
        [
          "# a typo on line 5",
          "registries:",
          `  "${upstream.host}":`,
          `    mirrors: ["${mirror.url}"]`,
          "    insecure: true",
          "",
        ].join("\n"),
      );
      const r = await ferry(
        ["pull", "--config", c.config, "--store", c.store, `${upstream.host}/cfg/app:v1`],
        c.env,
      );
      assertExit(r, 2);
      assert.ok(r.stderr.includes(`${c.config}:5:5`), describeRun(r));
      assert.ok(r.stderr.includes(`registries.${upstream.host}.insecure`), describeRun(r));
      assert.match(r.stderr, /unknown key/);
      assert.match(r.stderr, /hint: .*plainHttp/);
    });

    test("a mirror that is not an http(s) URL: exit 2, FILE:LINE:COL and the key", async () => {
      const c = await setup(
        [
          "registries:",
          `  "${upstream.host}":`,
          "    mirrors:",
          `      - ${mirror.url}`,
          "      - ftp://mirror.example/",
          "",
        ].join("\n"),
      );
      const r = await ferry(
        ["pull", "--config", c.config, "--store", c.store, `${upstream.host}/cfg/app:v1`],
        c.env,
      );
      assertExit(r, 2);
      assert.ok(r.stderr.includes(`${c.config}:5:9`), describeRun(r));
      assert.ok(r.stderr.includes(`registries.${upstream.host}.mirrors[1]`), describeRun(r));
      assert.match(r.stderr, /not an http:\/\/ or https:\/\/ URL/);
    });

    test("--config naming a file that does not exist: exit 2", async () => {
      const c = await setup();
      const missing = join(c.dir, "nowhere.yaml");
      const r = await ferry(
        ["pull", "--config", missing, "--store", c.store, `${upstream.host}/cfg/app:v1`],
        c.env,
      );
      assertExit(r, 2);
      assert.ok(r.stderr.includes(missing), describeRun(r));
      assert.match(r.stderr, /does not exist/);
    });
  });

  describe("errors that explain themselves", () => {
    test("a repository that does not exist: exit 3, 'repository … not found'", async () => {
      const c = await setup();
      const r = await ferry(["pull", "--store", c.store, `${upstream.host}/cfg/nothing:v1`], c.env);
      assertExit(r, 3);
      assert.ok(
        r.stderr.includes(`repository ${upstream.host}/cfg/nothing not found`),
        describeRun(r),
      );
      assert.match(r.stderr, /hint: /);
    });

    test("a tag that does not exist: exit 3, the message lists existing tags", async () => {
      const c = await setup();
      const ref = `${upstream.host}/cfg/tags:v9`;
      const r = await ferry(["pull", "--store", c.store, ref], c.env);
      assertExit(r, 3);
      assert.ok(
        r.stderr.includes(
          `tag "v9" not found in ${upstream.host}/cfg/tags (it has v7, v6, v5, v4, v3 and 2 more)`,
        ),
        describeRun(r),
      );
      const json = await ferry(["pull", "--json", "--store", c.store, ref], c.env);
      assertExit(json, 3);
      const error = ndjson(json.stdout).find((e) => e.event === "error");
      assert.equal(error?.code, "FERRY_MANIFEST_UNKNOWN", describeRun(json));
      assert.match(String(error?.message), /it has v7, v6/);
    });

    test("connection refused: exit 5, naming the host", async () => {
      const c = await setup();
      const host = `127.0.0.1:${await freePort()}`;
      const r = await ferry(["pull", "--store", c.store, `${host}/cfg/app:v1`], c.env);
      assertExit(r, 5);
      assert.ok(r.stderr.includes(host), describeRun(r));
      assert.match(r.stderr, /connection refused/);
      assert.match(r.stderr, /hint: /);
    });

    test("429 from the registry: exit 5 with the limit and reset time from its headers", async () => {
      const c = await setup();
      const proxy = await startProxy({
        target: upstream.host,
        failFirst: 1000,
        failWith: {
          status: 429,
          headers: {
            "ratelimit-limit": "100;w=21600",
            "ratelimit-reset": "3600",
            "retry-after": "0",
          },
          body: JSON.stringify({
            errors: [{ code: "TOOMANYREQUESTS", message: "pull rate limit" }],
          }),
        },
      });
      try {
        const r = await ferry(["pull", "--store", c.store, `${proxy.host}/cfg/app:v1`], c.env);
        assertExit(r, 5);
        assert.match(r.stderr, /rate limiting/);
        assert.match(r.stderr, /limit 100;w=21600/);
        assert.match(r.stderr, /resets in 3600s/);
        assert.match(r.stderr, /hint: /);
        // Retried (bounded), then reported: more than one request, not endless.
        assert.ok(
          proxy.requests.length > 1 && proxy.requests.length <= 10,
          `${proxy.requests.length} requests`,
        );
      } finally {
        await proxy.stop();
      }
    });
  });

  describe("TLS", () => {
    let tlsDir: string;
    let alias: string | undefined;
    let tls: { cert: string; key: string };
    let registry: { port: number; stop(): Promise<void> };

    before(async () => {
      tlsDir = join(work, "tls");
      await mkdir(tlsDir, { recursive: true });
      alias = await loopbackAlias();
      tls = await selfSignedCert(tlsDir, alias ?? "localhost");
      registry = await track(startTlsRegistry(tlsDir, tls));
      await pushImage(`127.0.0.1:${registry.port}`, "tls/app", "v1", { layers: [layer("tls")] });
    });

    test("a self-signed registry reached by name: exit 5 with a hint about the CA; `ca:` in the config makes it work", async (t) => {
      if (alias === undefined) {
        t.skip("no name other than localhost resolves to 127.0.0.1 on this machine");
        return;
      }
      const host = `${alias}:${registry.port}`;
      const ref = `${host}/tls/app:v1`;
      const bare = await setup("{}\n");
      const refused = await ferry(
        ["pull", "--config", bare.config, "--store", bare.store, ref],
        bare.env,
      );
      assertExit(refused, 5);
      assert.match(refused.stderr, /TLS/);
      assert.ok(refused.stderr.includes(host), describeRun(refused));
      assert.match(refused.stderr, /hint: .*private CA, set registries\.HOST\.ca/);

      const trusted = await setup(`registries:\n  "${host}":\n    ca: ${tls.cert}\n`);
      const r = await ferry(
        ["pull", "--config", trusted.config, "--store", trusted.store, ref],
        trusted.env,
      );
      assertExit(r, 0);
    });

    test("plainHttp: false makes ferry speak https to a loopback registry (and `ca:` trusts it)", async () => {
      // RegistrySettings.plainHttp: "as configured, else only for loopback hosts".
      const host = `127.0.0.1:${registry.port}`;
      const ref = `${host}/tls/app:v1`;
      const untrusted = await setup(`registries:\n  "${host}":\n    plainHttp: false\n`);
      const refused = await ferry(
        ["pull", "--config", untrusted.config, "--store", untrusted.store, ref],
        untrusted.env,
      );
      assertExit(refused, 5);
      assert.match(refused.stderr, /TLS/);

      const trusted = await setup(
        `registries:\n  "${host}":\n    plainHttp: false\n    ca: ${tls.cert}\n`,
      );
      const r = await ferry(
        ["pull", "--config", trusted.config, "--store", trusted.store, ref],
        trusted.env,
      );
      assertExit(r, 0);
    });
  });
});
