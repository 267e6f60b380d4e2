// Credentials end to end: `ferry login`/`logout`, Docker's config.json (auth, identitytoken,
// credHelpers, credsStore), podman's auth.json, Basic and token auth against real Distribution
// registries, and errors that say which of "log in", "rejected" and "denied" applies.
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, type FileSpec, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  type RunningTokenServer,
  startTokenServer,
  type TokenServerOptions,
} from "../fixtures/token-server.ts";
import {
  describeRun,
  type FerryResult,
  ferry,
  isolatedEnv,
  ndjson,
  type RunOptions,
  removeDir,
  tempDir,
  until,
} from "./cli.ts";

// Distinct strings, so that finding one in ferry's output can only mean it leaked.
const ALICE = { user: "alice", password: "pw-alice-Q7v1x" };
const BOB = { user: "bob", password: "pw-bob-Zr84k", refreshToken: "idtok-bob-M3nq9TqL" };
const CAROL = { user: "carol", password: "pw-carol-Hh20e" };
const WRONG_PASSWORD = "pw-wrong-Ux55c";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const SECRETS = [
  ALICE.password,
  BOB.password,
  BOB.refreshToken,
  CAROL.password,
  WRONG_PASSWORD,
  b64(`${ALICE.user}:${ALICE.password}`),
  b64(`${ALICE.user}:${WRONG_PASSWORD}`),
  b64(`${BOB.user}:${BOB.password}`),
  b64(`${BOB.user}:${WRONG_PASSWORD}`),
  b64(`${CAROL.user}:${CAROL.password}`),
];
/** Any JWT (header.claims.signature, both JSON objects base64url-encoded), e.g. an issued token. */
const JWT = /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}/;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

function assertNoSecrets(r: FerryResult): void {
  for (const [name, text] of [
    ["stdout", r.stdout],
    ["stderr", r.stderr],
  ] as const) {
    for (const secret of SECRETS) {
      assert.ok(!text.includes(secret), `a secret appeared on ${name}:\n${describeRun(r)}`);
    }
    assert.doesNotMatch(text, JWT, `a token appeared on ${name}:\n${describeRun(r)}`);
  }
}

/** Runs ferry; every run of this file is checked for leaked secrets. */
async function run(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: RunOptions = {},
): Promise<FerryResult> {
  const r = await ferry(args, env, options);
  assertNoSecrets(r);
  return r;
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

const tokenUsers = (prefix: string): TokenServerOptions["users"] => ({
  [BOB.user]: {
    password: BOB.password,
    pull: [`${prefix}*`],
    push: ["*"],
    refreshToken: BOB.refreshToken,
  },
  [CAROL.user]: { password: CAROL.password, pull: ["elsewhere/*"] },
});

/**
 * Forwards to a registry, but strips Authorization from the first `drop` blob GETs, so that
 * the registry itself answers 401 with its challenge, as it does for a token it no longer
 * accepts. (Distribution 2.8 accepts tokens up to 60 s past `exp`, so a real expiry mid-pull
 * cannot be provoked in a test of reasonable length.)
 */
async function startTokenDroppingProxy(target: string, drop: number) {
  const requests: Array<{ method: string; path: string; status: number; authorized: boolean }> = [];
  const [hostname, port] = target.split(":");
  let dropped = 0;
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const headers: IncomingHttpHeaders = { ...req.headers };
    delete headers.connection;
    const isBlob = req.method === "GET" && /\/blobs\/sha256:/.test(path);
    if (isBlob && dropped < drop) {
      dropped++;
      delete headers.authorization;
    }
    const record = {
      method: req.method ?? "",
      path,
      status: 0,
      authorized: headers.authorization !== undefined,
    };
    requests.push(record);
    const upstream = request(
      { hostname, port, method: req.method, path, headers, agent: false },
      (answer) => {
        record.status = answer.statusCode ?? 502;
        const out: IncomingHttpHeaders = { ...answer.headers };
        delete out.connection;
        delete out["transfer-encoding"];
        res.writeHead(record.status, out);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A docker-credential-ferrytest that keeps one JSON answer per server and logs "ACTION SERVER". */
const HELPER_SCRIPT = `#!/bin/sh
set -u
dir="$FERRYTEST_DIR"
action="$1"
input="$(cat)"
if [ "$action" = store ]; then
  server="$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')"
else
  server="$input"
fi
echo "$action $server" >> "$dir/calls.log"
file="$dir/$(printf '%s' "$server" | od -An -tx1 | tr -d ' \\n').json"
case "$action" in
  get) if [ -f "$file" ]; then cat "$file"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) printf '%s' "$input" > "$file" ;;
  erase) if [ -f "$file" ]; then rm "$file"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
`;

describe("credentials, login and auth errors", () => {
  let work: string;
  let homeCount = 0;
  let basic: RunningRegistry; // htpasswd: alice
  let tokens: RunningTokenServer; // bob may pull private/*, carol nothing here; public/* is anonymous
  let tokenRegistry: RunningRegistry;
  let shortTokens: RunningTokenServer; // 2 s tokens
  let expiring: RunningRegistry;
  let basicApp: BuiltImage;
  const stoppers: Array<() => Promise<void>> = [];

  before(async () => {
    work = await tempDir("credentials");
    [basic, tokens, shortTokens] = await Promise.all([
      track(startRegistry({ htpasswd: { user: ALICE.user, password: ALICE.password } })),
      track(startTokenServer({ users: tokenUsers("private/"), anonymousPull: ["public/*"] })),
      track(startTokenServer({ users: tokenUsers("expiry/"), expiresInSeconds: 2 })),
    ]);
    [tokenRegistry, expiring] = await Promise.all([
      track(startRegistry({ extraConfig: { auth: tokens.registryAuth() } })),
      track(startRegistry({ extraConfig: { auth: shortTokens.registryAuth() } })),
    ]);
    const alice = { creds: `${ALICE.user}:${ALICE.password}` };
    const bob = { creds: `${BOB.user}:${BOB.password}` };
    [basicApp] = await Promise.all([
      pushImage(basic.host, "private/app", "v1", { layers: [layer("basic")] }, alice),
      pushImage(tokenRegistry.host, "public/base", "v1", { layers: [layer("public")] }, bob),
      pushImage(tokenRegistry.host, "private/app", "v1", { layers: [layer("private")] }, bob),
      pushImage(expiring.host, "expiry/one", "v1", { layers: [layer("one")] }, bob),
      pushImage(expiring.host, "expiry/two", "v1", { layers: [layer("two")] }, bob),
      // Two layers of ~600 kB that do not compress: throttled and one at a time, whichever of
      // them goes second starts after the first token has expired, in either order.
      pushImage(
        expiring.host,
        "expiry/big",
        "v1",
        {
          layers: [
            [{ path: "big.bin", size: 600_000, seed: "big" }],
            [{ path: "big2.bin", size: 600_000, seed: "big2" }],
          ],
          compression: "none",
        },
        bob,
      ),
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

  function proxy(target: string, options: { bytesPerSecond?: number } = {}): Promise<RunningProxy> {
    return track(startProxy({ target, ...options }));
  }

  /** A fresh HOME (DOCKER_CONFIG = HOME/.docker), with config.json when given. */
  async function home(configJson?: Record<string, unknown>) {
    const dir = join(work, `home-${++homeCount}`);
    const docker = join(dir, ".docker");
    await mkdir(docker, { recursive: true, mode: 0o700 });
    const configPath = join(docker, "config.json");
    if (configJson !== undefined) {
      await writeFile(configPath, JSON.stringify(configJson, null, 2), { mode: 0o600 });
    }
    return { dir, configPath, env: isolatedEnv(dir), store: join(dir, "store") };
  }

  const authOf = (user: string, password: string) => ({ auth: b64(`${user}:${password}`) });

  /** `ferry pull` twice, plain and --json: same exit code, the JSON error naming `code`. */
  async function pullBoth(
    ref: string,
    h: { env: NodeJS.ProcessEnv; store: string },
    expected: { exit: number; code?: string },
  ): Promise<FerryResult> {
    const plain = await run(["pull", "--store", h.store, ref], h.env);
    assertExit(plain, expected.exit);
    // Its own store, so that a successful --json pull goes through the whole flow again.
    const json = await run(["pull", "--json", "--store", `${h.store}-json`, ref], h.env);
    assertExit(json, expected.exit);
    const events = ndjson(json.stdout);
    if (expected.code !== undefined) {
      const error = events.find((e) => e.event === "error");
      assert.equal(error?.code, expected.code, describeRun(json));
      assert.equal(error?.exitCode, expected.exit, describeRun(json));
    } else {
      assert.ok(
        events.some((e) => e.event === "done"),
        describeRun(json),
      );
    }
    return plain;
  }

  async function installHelper(h: { dir: string; env: NodeJS.ProcessEnv }) {
    const bin = join(h.dir, "bin");
    const state = join(h.dir, "helper-state");
    await mkdir(bin, { recursive: true });
    await mkdir(state, { recursive: true });
    const program = join(bin, "docker-credential-ferrytest");
    await writeFile(program, HELPER_SCRIPT);
    await chmod(program, 0o755);
    const fileOf = (server: string) => join(state, `${Buffer.from(server).toString("hex")}.json`);
    const env: NodeJS.ProcessEnv = {
      ...h.env,
      PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      FERRYTEST_DIR: state,
    };
    return {
      env,
      put: (server: string, username: string, secret: string) =>
        writeFile(
          fileOf(server),
          JSON.stringify({ ServerURL: server, Username: username, Secret: secret }),
        ),
      held: async (server: string) =>
        JSON.parse(await readFile(fileOf(server), "utf8")) as Record<string, string>,
      calls: async () =>
        (await readFile(join(state, "calls.log"), "utf8").catch(() => ""))
          .split("\n")
          .filter((line) => line !== ""),
    };
  }

  describe("htpasswd registry", () => {
    test("pull without login → 4 naming the registry and `ferry login HOST`; wrong password → 4 rejected, nothing written; right → 0600 config.json, other keys kept; logout", async () => {
      const h = await home();
      const ref = `${basic.host}/private/app:v1`;
      const host = basic.host;

      const anonymous = await pullBoth(ref, h, { exit: 4, code: "FERRY_AUTH_REQUIRED" });
      assert.ok(anonymous.stderr.includes(host), describeRun(anonymous));
      assert.match(anonymous.stderr, new RegExp(`ferry login ${escapeRegExp(host)}`));

      const login = (password: string) =>
        run(["login", host, "-u", ALICE.user, "--password-stdin"], h.env, {
          stdin: `${password}\n`,
        });

      const wrongFirst = await login(WRONG_PASSWORD);
      assertExit(wrongFirst, 4);
      assert.match(wrongFirst.stderr, /rejected/);
      assert.equal(await exists(h.configPath), false, "a failed login creates no config.json");

      const before = {
        auths: { "registry.example.com": authOf("someone", "not-ours") },
        psFormat: "table {{.ID}}",
        proxies: { default: { httpProxy: "http://proxy.example:3128" } },
      };
      const beforeText = JSON.stringify(before, null, 2);
      await writeFile(h.configPath, beforeText, { mode: 0o644 });
      const wrong = await login(WRONG_PASSWORD);
      assertExit(wrong, 4);
      assert.match(wrong.stderr, /rejected/);
      assert.equal(
        await readFile(h.configPath, "utf8"),
        beforeText,
        "a failed login changes nothing",
      );

      const right = await login(ALICE.password);
      assertExit(right, 0);
      assert.match(right.stdout, /Login Succeeded/);
      assert.equal((await stat(h.configPath)).mode & 0o777, 0o600);
      const saved = JSON.parse(await readFile(h.configPath, "utf8")) as {
        auths: Record<string, { auth?: string }>;
        psFormat: unknown;
        proxies: unknown;
      };
      assert.equal(saved.auths[host]?.auth, b64(`${ALICE.user}:${ALICE.password}`));
      assert.deepEqual(saved.auths["registry.example.com"], before.auths["registry.example.com"]);
      assert.equal(saved.psFormat, before.psFormat);
      assert.deepEqual(saved.proxies, before.proxies);

      await pullBoth(ref, h, { exit: 0 });
      assert.ok(
        await exists(join(h.store, "blobs", "sha256", basicApp.manifestDigest.slice(7))),
        "the image is in the store",
      );

      const logout = await run(["logout", host], h.env);
      assertExit(logout, 0);
      const afterLogout = JSON.parse(await readFile(h.configPath, "utf8")) as {
        auths: Record<string, unknown>;
        psFormat: unknown;
      };
      assert.equal(afterLogout.auths[host], undefined, "logout removes the entry");
      assert.deepEqual(
        afterLogout.auths["registry.example.com"],
        before.auths["registry.example.com"],
      );
      assert.equal(afterLogout.psFormat, before.psFormat);
      const again = await run(["pull", "--store", join(h.dir, "store-2"), ref], h.env);
      assertExit(again, 4);
      assert.match(again.stderr, new RegExp(`ferry login ${escapeRegExp(host)}`));
    });

    test("a wrong password stored in config.json: exit 4, rejected", async () => {
      const h = await home({ auths: { [basic.host]: authOf(ALICE.user, WRONG_PASSWORD) } });
      const r = await pullBoth(`${basic.host}/private/app:v1`, h, {
        exit: 4,
        code: "FERRY_AUTH_REJECTED",
      });
      assert.match(r.stderr, /did not accept|rejected/);
      assert.ok(r.stderr.includes(basic.host), describeRun(r));
    });

    test("podman: REGISTRY_AUTH_FILE names an auth.json that is used", async () => {
      const h = await home();
      const authFile = join(h.dir, "containers-auth.json");
      await writeFile(
        authFile,
        JSON.stringify({ auths: { [basic.host]: authOf(ALICE.user, ALICE.password) } }),
      );
      const env = { ...h.env, REGISTRY_AUTH_FILE: authFile };
      assertExit(await run(["pull", "--store", h.store, `${basic.host}/private/app:v1`], env), 0);
    });
  });

  describe("token-auth registry", () => {
    const newRequests = (from: number) => tokens.requests.slice(from);

    test("anonymous pull of a public repository works", async () => {
      const h = await home();
      const from = tokens.requests.length;
      await pullBoth(`${tokenRegistry.host}/public/base:v1`, h, { exit: 0 });
      const asked = newRequests(from);
      assert.ok(asked.length > 0, "the token server was asked");
      assert.ok(
        asked.every((q) => q.user === undefined && q.status === 200),
        JSON.stringify(asked),
      );
    });

    test("a private repository without login: exit 4, authentication required", async () => {
      const h = await home();
      const r = await pullBoth(`${tokenRegistry.host}/private/app:v1`, h, {
        exit: 4,
        code: "FERRY_AUTH_REQUIRED",
      });
      assert.match(r.stderr, /requires authentication/);
      assert.match(r.stderr, new RegExp(`ferry login ${escapeRegExp(tokenRegistry.host)}`));
    });

    test("base64 auth in config.json: the token server gets Basic credentials, the pull works", async () => {
      const h = await home({
        auths: { [tokenRegistry.host]: authOf(BOB.user, BOB.password) },
      });
      const from = tokens.requests.length;
      await pullBoth(`${tokenRegistry.host}/private/app:v1`, h, { exit: 0 });
      assert.ok(
        newRequests(from).some((q) => q.user === BOB.user && q.method === "GET"),
        JSON.stringify(newRequests(from)),
      );
    });

    test("valid credentials without access: exit 4, denied (not 'not found', not 'rejected')", async () => {
      const h = await home({
        auths: { [tokenRegistry.host]: authOf(CAROL.user, CAROL.password) },
      });
      const r = await pullBoth(`${tokenRegistry.host}/private/app:v1`, h, {
        exit: 4,
        code: "FERRY_DENIED",
      });
      assert.match(r.stderr, /denied/);
      assert.doesNotMatch(r.stderr, /not found/);
      assert.doesNotMatch(r.stderr, /rejected/);
    });

    test("a wrong stored password: exit 4, rejected", async () => {
      const h = await home({
        auths: { [tokenRegistry.host]: authOf(BOB.user, WRONG_PASSWORD) },
      });
      const r = await pullBoth(`${tokenRegistry.host}/private/app:v1`, h, {
        exit: 4,
        code: "FERRY_AUTH_REJECTED",
      });
      assert.match(r.stderr, /rejected/);
      assert.match(r.stderr, new RegExp(`ferry login ${escapeRegExp(tokenRegistry.host)}`));
    });

    test("an identity token: the OAuth2 refresh_token grant, the pull works", async () => {
      const h = await home({
        auths: { [tokenRegistry.host]: { identitytoken: BOB.refreshToken } },
      });
      const from = tokens.requests.length;
      await pullBoth(`${tokenRegistry.host}/private/app:v1`, h, { exit: 0 });
      const refresh = newRequests(from).filter((q) => q.grant === "refresh_token");
      assert.ok(refresh.length > 0, JSON.stringify(newRequests(from)));
      assert.ok(
        refresh.every((q) => q.method === "POST" && q.user === BOB.user && q.status === 200),
        JSON.stringify(refresh),
      );
    });
  });

  describe("token expiry and renewal (2 s tokens)", () => {
    const bobFor = (host: string) => ({ auths: { [host]: authOf(BOB.user, BOB.password) } });

    test("a second pull after the first token expired gets a new token", async () => {
      const h = await home(bobFor(expiring.host));
      const first = shortTokens.requests.length;
      assertExit(
        await run(["pull", "--store", h.store, `${expiring.host}/expiry/one:v1`], h.env),
        0,
      );
      const second = shortTokens.requests.length;
      assert.ok(second > first);
      const expiry = Math.max(...shortTokens.requests.slice(first).map((q) => q.expiresAt ?? 0));
      await until("the first pull's tokens to expire", () => Date.now() > expiry);
      assertExit(
        await run(["pull", "--store", h.store, `${expiring.host}/expiry/two:v1`], h.env),
        0,
      );
      const renewed = shortTokens.requests.slice(second);
      assert.ok(renewed.length > 0, "the second pull asked for a token");
      assert.ok(
        renewed.every((q) => q.status === 200 && q.user === BOB.user),
        JSON.stringify(renewed),
      );
    });

    test("a blob download that outlives its token (throttled proxy): renewed, exit 0", async () => {
      const slow = await proxy(expiring.host, { bytesPerSecond: 200_000 });
      const h = await home(bobFor(slow.host));
      const from = shortTokens.requests.length;
      const r = await run(
        ["pull", "--concurrency", "1", "--store", h.store, `${slow.host}/expiry/big:v1`],
        h.env,
      );
      assertExit(r, 0);
      const asked = shortTokens.requests.slice(from);
      assert.ok(asked.length >= 2, `token requests: ${JSON.stringify(asked)}`);
      assert.ok(asked.every((q) => q.status === 200 && q.user === BOB.user));
      const blobs = slow.requests.filter((q) => q.method === "GET" && q.path.includes("/blobs/"));
      assert.ok(
        blobs.every((q) => q.status === 200 || q.status === 206),
        JSON.stringify(blobs),
      );
      // The precondition, from the servers' own records: a blob GET ended after the pull's first token expired.
      const firstExpiry = asked[0]?.expiresAt;
      const lastBlobEnd = Math.max(...blobs.map((q) => q.finishedAt ?? 0));
      assert.ok(
        firstExpiry !== undefined && lastBlobEnd > firstExpiry,
        `the download outlived its first token: ${JSON.stringify({ firstExpiry, blobs })}`,
      );
    });

    test("the registry answers 401 to a blob request mid-pull: ferry renews the token and finishes", async () => {
      const gate = await track(startTokenDroppingProxy(expiring.host, 1));
      const h = await home(bobFor(gate.host));
      const from = shortTokens.requests.length;
      const r = await run(
        ["pull", "--concurrency", "1", "--store", h.store, `${gate.host}/expiry/one:v1`],
        h.env,
      );
      assertExit(r, 0);
      const blobs = gate.requests.filter((q) => q.method === "GET" && q.path.includes("/blobs/"));
      const refused = blobs.find((q) => q.status === 401);
      assert.ok(refused !== undefined, `a blob request met 401: ${JSON.stringify(blobs)}`);
      assert.ok(
        blobs.some((q) => q.path === refused.path && q.status === 200 && q.authorized),
        `the refused blob was fetched again with a token: ${JSON.stringify(blobs)}`,
      );
      assert.ok(shortTokens.requests.length - from >= 2);
    });
  });

  describe("credential helpers", () => {
    test("credHelpers[HOST]: the helper's answer is used", async () => {
      const h = await home({ credHelpers: { [basic.host]: "ferrytest" } });
      const helper = await installHelper(h);
      await helper.put(basic.host, ALICE.user, ALICE.password);
      const r = await run(["pull", "--store", h.store, `${basic.host}/private/app:v1`], helper.env);
      assertExit(r, 0);
      assert.ok((await helper.calls()).includes(`get ${basic.host}`));
    });

    test("credsStore: the helper's answer is used; a host it does not know is pulled anonymously", async () => {
      const h = await home({ credsStore: "ferrytest" });
      const helper = await installHelper(h);
      await helper.put(basic.host, ALICE.user, ALICE.password);
      assertExit(
        await run(["pull", "--store", h.store, `${basic.host}/private/app:v1`], helper.env),
        0,
      );
      assertExit(
        await run(["pull", "--store", h.store, `${tokenRegistry.host}/public/base:v1`], helper.env),
        0,
      );
      const calls = await helper.calls();
      assert.ok(calls.includes(`get ${basic.host}`), calls.join("\n"));
      assert.ok(calls.includes(`get ${tokenRegistry.host}`), calls.join("\n"));
    });

    test("ferry login with credsStore: stored through the helper, no secret in config.json", async () => {
      const h = await home({ credsStore: "ferrytest" });
      const helper = await installHelper(h);
      const r = await run(["login", basic.host, "-u", ALICE.user, "--password-stdin"], helper.env, {
        stdin: `${ALICE.password}\n`,
      });
      assertExit(r, 0);
      assert.match(r.stdout, /Login Succeeded/);
      assert.doesNotMatch(r.stderr, /unencrypted/);
      assert.ok((await helper.calls()).includes(`store ${basic.host}`));
      assert.deepEqual(await helper.held(basic.host), {
        ServerURL: basic.host,
        Username: ALICE.user,
        Secret: ALICE.password,
      });
      const config = await readFile(h.configPath, "utf8");
      assert.ok(!config.includes(ALICE.password), config);
      assert.ok(!config.includes(b64(`${ALICE.user}:${ALICE.password}`)), config);
      assert.equal(
        (JSON.parse(config) as { credsStore?: string }).credsStore,
        "ferrytest",
        "config.json keeps its credsStore",
      );
      assertExit(
        await run(["pull", "--store", h.store, `${basic.host}/private/app:v1`], helper.env),
        0,
      );
      assertExit(await run(["logout", basic.host], helper.env), 0);
      assert.ok((await helper.calls()).includes(`erase ${basic.host}`));
    });
  });

  describe("credentials go only where they belong", () => {
    test("pulling from registry A sends A nothing of registry B's credentials", async () => {
      const inFront = await proxy(basic.host);
      const h = await home({ auths: { [tokenRegistry.host]: authOf(BOB.user, BOB.password) } });
      const r = await run(["pull", "--store", h.store, `${inFront.host}/private/app:v1`], h.env);
      assertExit(r, 4); // A wants Basic credentials and ferry has none for A
      assert.ok(inFront.requests.length > 0);
      assert.deepEqual(
        inFront.requests.filter((q) => q.authorization),
        [],
        "no request to A carried an Authorization header",
      );
    });

    test("B's credentials do not reach the token realm A names", async () => {
      const h = await home({ auths: { [basic.host]: authOf(ALICE.user, ALICE.password) } });
      const from = tokens.requests.length;
      assertExit(
        await run(["pull", "--store", h.store, `${tokenRegistry.host}/public/base:v1`], h.env),
        0,
      );
      const asked = tokens.requests.slice(from);
      assert.ok(asked.length > 0);
      assert.ok(
        asked.every((q) => q.user === undefined && q.status === 200),
        `anonymous token requests only: ${JSON.stringify(asked)}`,
      );
    });
  });
});
