// How `ferry pull` fails: exit codes, messages, and a store left consistent.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryResult,
  ferry,
  ingestFiles,
  lines,
  ndjson,
  readStoreIndex,
  removeDir,
  tempDir,
  verifiedBlobs,
} from "./cli.ts";

const execFileAsync = promisify(execFile);

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe("ferry pull failures", () => {
  let registry: RunningRegistry;
  let work: string;
  let small: BuiltImage;
  let big: BuiltImage;
  const proxies: RunningProxy[] = [];
  let storeCount = 0;
  const newStore = () => join(work, `store-${++storeCount}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("pull-fail");
    [small, big] = await Promise.all([
      pushImage(registry.host, "fail/small", "v1", {
        layers: [
          [{ path: "etc/os-release", content: "small\n" }],
          [{ path: "data", size: 30_000 }],
        ],
      }),
      // ~5 MB that does not compress, for the disk-full case.
      pushImage(registry.host, "fail/big", "v1", {
        layers: [[{ path: "big.bin", size: 5_000_000 }]],
        compression: "none",
      }),
    ]);
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  async function proxy(options: Omit<Parameters<typeof startProxy>[0], "target">) {
    const p = await startProxy({ target: registry.host, ...options });
    proxies.push(p);
    return p;
  }

  test("corrupted blobs: exit 6 naming the blob and the registry; nothing stored, no partial left", async () => {
    const corrupting = await proxy({ corruptBlobs: true });
    const store = newStore();
    const name = `${corrupting.host}/fail/small:v1`;
    const r = await ferry(["pull", "--store", store, name]);
    assertExit(r, 6);
    // The message after "ferry: REF: " names the bad blob and the registry that served it.
    const prefix = `ferry: ${name}: `;
    assert.ok(r.stderr.startsWith(prefix), r.stderr);
    const message = r.stderr.slice(prefix.length);
    const wanted = [small.configDigest, ...small.layers.map((l) => l.digest)];
    const named = wanted.filter((d) => message.includes(d));
    assert.equal(named.length, 1, `the message names one blob digest:\n${r.stderr}`);
    assert.match(message, /does not match/);
    assert.ok(message.includes(corrupting.host), `the message names the registry:\n${r.stderr}`);
    assert.equal(r.stdout.includes("Pull complete"), false, describeRun(r));

    const blobs = await verifiedBlobs(store);
    for (const d of wanted) assert.ok(!blobs.includes(d), `${d} must not be in the store`);
    assert.deepEqual(
      (await ingestFiles(store)).filter((f) => f.endsWith(".partial")),
      [],
      "no partial download is left behind",
    );
    assert.deepEqual(await entriesFor(store, name), []);
    assert.ok(
      corrupting.requests.some((q) => q.path.endsWith(`/blobs/${named[0]}`) && q.status === 200),
    );
  });

  test("unknown tag and unknown repository: exit 3", async () => {
    const store = newStore();
    const tag = await ferry(["pull", "--store", store, `${registry.host}/fail/small:v9`]);
    assertExit(tag, 3);
    assert.match(tag.stderr, /\bv9"? not found in 127\.0\.0\.1:\d+\/fail\/small\b/);
    const repo = await ferry(["pull", "--store", store, `${registry.host}/fail/nothing:v1`]);
    assertExit(repo, 3);
    assert.match(repo.stderr, /fail\/nothing/);
    assert.match(repo.stderr, /not found/);
    assert.deepEqual((await readStoreIndex(store)).manifests, []);
  });

  test("connection refused: exit 5", async () => {
    const port = await freePort();
    const r = await ferry(["pull", "--store", newStore(), `127.0.0.1:${port}/fail/small:v1`]);
    assertExit(r, 5);
    assert.match(
      r.stderr,
      new RegExp(`registry ${escapeRegExp(`127.0.0.1:${port}`)}\\b.*connection refused`),
    );
  });

  test("errors name the fully resolved reference, not the text typed", async () => {
    const port = await freePort();
    const typed = `127.0.0.1:${port}/fail/small`;
    const r = await ferry(["pull", "--store", newStore(), typed]);
    assertExit(r, 5);
    assert.ok(r.stderr.startsWith(`ferry: ${typed}:latest: `), r.stderr);
    const json = await ferry(["pull", "--json", "--store", newStore(), typed]);
    assertExit(json, 5);
    assert.equal(ndjson(json.stdout).at(-1)?.reference, `${typed}:latest`, describeRun(json));
  });

  test("invalid references: exit 2 with the reason, before the store is touched", async () => {
    const cases: Array<[string, RegExp]> = [
      ["Foo/Bar", /invalid reference "Foo\/Bar": repository name must be lowercase/],
      ["a:b:c", /invalid reference "a:b:c": invalid tag "b:c"/],
      ["", /invalid reference "": reference is empty/],
    ];
    for (const [input, reason] of cases) {
      const store = newStore();
      const r = await ferry(["pull", "--store", store, input]);
      assertExit(r, 2);
      assert.match(r.stderr, reason);
      assert.match(r.stderr, /hint: /);
      assert.equal(r.stdout, "");
      assert.equal(await exists(store), false, `no store created for ${JSON.stringify(input)}`);
    }
  });

  test("--json: a failed pull prints an error event and exits non-zero", async () => {
    const store = newStore();
    const name = `${registry.host}/fail/small:v9`;
    const r = await ferry(["pull", "--json", "--store", store, name]);
    assertExit(r, 3);
    const last = ndjson(r.stdout).at(-1);
    assert.equal(last?.event, "error", describeRun(r));
    assert.equal(last?.reference, name);
    assert.equal(last?.code, "FERRY_MANIFEST_UNKNOWN");
    assert.equal(last?.exitCode, 3);
    assert.match(String(last?.message), /\bv9"? not found in 127\.0\.0\.1:\d+\/fail\/small\b/);
    assert.equal(typeof last?.hint, "string");

    const corrupting = await proxy({ corruptBlobs: true });
    const corrupt = `${corrupting.host}/fail/small:v1`;
    const bad = await ferry(["pull", "--json", "--store", store, corrupt]);
    assertExit(bad, 6);
    const events = ndjson(bad.stdout);
    assert.equal(events[0]?.event, "resolved");
    const errors = events.filter((e) => e.event === "error");
    assert.equal(errors.length, 1, describeRun(bad));
    assert.equal(errors[0]?.reference, corrupt);
    assert.equal(errors[0]?.code, "FERRY_DIGEST_MISMATCH");
    assert.equal(errors[0]?.exitCode, 6);
    assert.equal(
      events.some((e) => e.event === "done"),
      false,
    );
  });

  test("transient 503s are retried: the pull succeeds", async () => {
    const flaky = await proxy({ failFirst: 2 });
    const store = newStore();
    const name = `${flaky.host}/fail/small:v1`;
    const r = await ferry(["pull", "--store", store, name]);
    assertExit(r, 0);
    assert.equal(lines(r.stdout).at(-2), `Status: Downloaded newer image for ${name}`);
    assert.deepEqual(
      flaky.requests.slice(0, 2).map((q) => q.status),
      [503, 503],
    );
    assert.ok(flaky.requests.slice(2).every((q) => q.status === 200 || q.status === 401));
    assert.deepEqual(
      await verifiedBlobs(store),
      [small.manifestDigest, small.configDigest, ...small.layers.map((l) => l.digest)].sort(),
    );
    assert.equal((await entriesFor(store, name)).length, 1);
  });

  describe("on a full disk", () => {
    let mountPoint: string | undefined;
    before(async () => {
      const dir = join(work, "tmpfs");
      await mkdir(dir);
      await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir]);
      mountPoint = dir;
    });
    after(async () => {
      if (mountPoint !== undefined) await execFileAsync("umount", [mountPoint]);
    });

    test("exit 7 with 'no space left'; index.json stays valid", async () => {
      const store = join(mountPoint ?? "", "store");
      const name = `${registry.host}/fail/big:v1`;
      const r = await ferry(["pull", "--store", store, name]);
      assertExit(r, 7);
      assert.match(r.stderr, /no space left/);
      const index = await readStoreIndex(store);
      assert.deepEqual(index.manifests, []);
      const blobs = await verifiedBlobs(store);
      assert.ok(!blobs.includes(big.layers[0]?.digest ?? ""));
      // A later pull into a roomy store still works: nothing about the image was recorded.
      assert.equal(JSON.parse(await readFile(join(store, "index.json"), "utf8")).schemaVersion, 2);
    });
  });

  test("usage errors: exit 2", async () => {
    const store = newStore();
    const getsBefore = (await registry.blobGets()).length;
    const cases: Array<[string[], RegExp]> = [
      [["pull"], /pull needs at least one image reference/],
      [
        ["pull", "--concurrency", "0", `${registry.host}/fail/small:v1`],
        /--concurrency must be a whole number from 1 to 64, got "0"/,
      ],
      [["pull", "--no-such-flag", `${registry.host}/fail/small:v1`], /no-such-flag/],
      [
        ["pull", "--platform", "linux", `${registry.host}/fail/small:v1`],
        /invalid platform "linux"/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await ferry([...args, "--store", store]);
      assertExit(r, 2);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
    }
    assert.equal(await exists(store), false, "a usage error touches no store");
    assert.equal((await registry.blobGets()).length, getsBefore, "nor the registry");
  });
});
