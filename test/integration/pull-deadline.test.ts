// `ferry pull --timeout`: one progress deadline per manifest and per blob, against a real
// registry behind a proxy that stalls (no head, or a body held at a fixed offset).
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type ProxyOptions, type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryResult,
  ferry,
  ndjson,
  readStoreIndex,
  removeDir,
  tempDir,
  verifiedBlobs,
} from "./cli.ts";

const TIMEOUT_S = 2;

/** The error event of a `--json` pull, with the attempts and seconds its message reports. */
function gaveUp(r: FerryResult, what: string): { attempts: number; seconds: number } {
  assert.equal(r.code, 5, describeRun(r));
  const error = ndjson(r.stdout).find((e) => e.event === "error");
  assert.equal(error?.code, "FERRY_TIMEOUT", describeRun(r));
  assert.equal(error?.exitCode, 5);
  assert.match(String(error?.hint), /--timeout/);
  const message = String(error?.message);
  const m = /: no progress for 2 s, gave up after (\d+) attempts? in ([\d.]+) s \(/.exec(message);
  assert.ok(m !== null, `reports the deadline, attempts and time:\n${message}`);
  assert.ok(message.startsWith(`${what}: `), `names ${what}:\n${message}`);
  return { attempts: Number(m[1]), seconds: Number(m[2]) };
}

describe("ferry pull --timeout", () => {
  let registry: RunningRegistry;
  let work: string;
  let image: BuiltImage;
  const proxies: RunningProxy[] = [];
  let stores = 0;
  const newStore = () => join(work, `store-${++stores}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("pull-deadline");
    image = await pushImage(registry.host, "dl/img", "v1", {
      layers: [[{ path: "data", size: 30_000 }]],
      compression: "none",
    });
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  async function proxy(options: Omit<ProxyOptions, "target">): Promise<RunningProxy> {
    const p = await startProxy({ target: registry.host, ...options });
    proxies.push(p);
    return p;
  }

  const pull = (store: string, name: string) =>
    ferry(["pull", "--json", "--timeout", `${TIMEOUT_S}s`, "--store", store, name]);

  test("a blob body that stalls: resumed with Range inside the deadline, then FERRY_TIMEOUT naming attempts and time; nothing unverified stored", async () => {
    const layer = image.layers[0]?.digest ?? "";
    const stalling = await proxy({ stall: { what: "blobs", at: 1000 } });
    const store = newStore();
    const name = `${stalling.host}/dl/img:v1`;
    const r = await pull(store, name);
    const { attempts, seconds } = gaveUp(r, `blob ${layer} of ${stalling.host}/dl/img`);
    assert.ok(attempts >= 2, `at least one resumed attempt: ${attempts}`);
    assert.ok(seconds >= TIMEOUT_S, `reported ${seconds} s`);
    const gets = stalling.requests.filter((q) => q.path.endsWith(`/blobs/${layer}`));
    assert.equal(gets[0]?.range, undefined);
    assert.ok(
      gets.slice(1).some((q) => q.range === "bytes=1000-"),
      `resumed from the stall: ${JSON.stringify(gets)}`,
    );
    assert.equal((await verifiedBlobs(store)).includes(layer), false);
    assert.deepEqual(await entriesFor(store, name), []);

    // The bytes kept in the ingest file are resumed from by a later pull, and verified.
    const clean = await proxy({});
    const again = await ferry(["pull", "--json", "--store", store, `${clean.host}/dl/img:v1`]);
    assert.equal(again.code, 0, describeRun(again));
    const resumed = clean.requests.filter((q) => q.path.endsWith(`/blobs/${layer}`));
    assert.deepEqual(
      resumed.map((q) => q.range),
      ["bytes=1000-"],
    );
    assert.ok((await verifiedBlobs(store)).includes(layer));
  });

  test("ferry copy --timeout: a source blob that stalls ends with the same deadline error", async () => {
    const layer = image.layers[0]?.digest ?? "";
    const stalling = await proxy({ stall: { what: "blobs", at: 1000 } });
    const r = await ferry([
      "copy",
      "--json",
      "--timeout",
      `${TIMEOUT_S}s`,
      "--store",
      newStore(),
      `${stalling.host}/dl/img:v1`,
      `${registry.host}/dl/copy:v1`,
    ]);
    const { seconds } = gaveUp(r, `blob ${layer} of ${stalling.host}/dl/img`);
    assert.ok(seconds >= TIMEOUT_S, `reported ${seconds} s`);
    assert.ok(
      stalling.requests.some((q) => q.range === "bytes=1000-"),
      "resumed with Range",
    );
  });

  test("a registry that never answers: FERRY_TIMEOUT once the manifest's deadline passes", async () => {
    const silent = await proxy({ stall: { what: "all", at: "head" } });
    const store = newStore();
    const r = await pull(store, `${silent.host}/dl/img:v1`);
    const { attempts, seconds } = gaveUp(r, `manifest v1 of ${silent.host}/dl/img`);
    assert.ok(attempts >= 2, `retried within the deadline: ${attempts}`);
    assert.ok(seconds >= TIMEOUT_S, `reported ${seconds} s`);
    assert.deepEqual((await readStoreIndex(store)).manifests, []);
  });

  test("a manifest body that stalls: asked for again within the deadline, then FERRY_TIMEOUT", async () => {
    const stalling = await proxy({ stall: { what: "manifests", at: 100 } });
    const store = newStore();
    const r = await pull(store, `${stalling.host}/dl/img:v1`);
    const { seconds } = gaveUp(r, `manifest v1 of ${stalling.host}/dl/img`);
    assert.ok(seconds >= TIMEOUT_S, `reported ${seconds} s`);
    const gets = stalling.requests.filter(
      (q) => q.method === "GET" && q.path.includes("/manifests/"),
    );
    assert.ok(gets.length >= 2, `asked again: ${JSON.stringify(gets)}`);
    assert.deepEqual((await readStoreIndex(store)).manifests, []);
  });

  test("the config file's registries.HOST.timeoutSeconds sets the deadline; --timeout overrides it", {
    timeout: 60_000,
  }, async () => {
    const silent = await proxy({ stall: { what: "all", at: "head" } });
    const config = async (seconds: number) => {
      const path = join(work, `config-${seconds}.yaml`);
      await writeFile(path, `registries:\n  "${silent.host}":\n    timeoutSeconds: ${seconds}\n`);
      return path;
    };
    const name = `${silent.host}/dl/img:v1`;
    const configured = await ferry([
      "pull",
      "--json",
      "--config",
      await config(TIMEOUT_S),
      "--store",
      newStore(),
      name,
    ]);
    assert.ok(gaveUp(configured, `manifest v1 of ${silent.host}/dl/img`).seconds >= TIMEOUT_S);
    const overridden = await ferry([
      "pull",
      "--json",
      "--timeout",
      `${TIMEOUT_S}s`,
      "--config",
      await config(600),
      "--store",
      newStore(),
      name,
    ]);
    assert.ok(gaveUp(overridden, `manifest v1 of ${silent.host}/dl/img`).seconds >= TIMEOUT_S);
  });

  test("--timeout must be a duration of at least 1s: exit 2 before any request", async () => {
    const store = newStore();
    for (const [value, reason] of [
      ["0s", /--timeout must be at least 1s, got "0s"/],
      ["5", /--timeout "5" has no unit\n {2}hint: e\.g\. --timeout 5s/],
      ["soon", /--timeout "soon" is not a duration/],
    ] as const) {
      const r = await ferry([
        "pull",
        "--timeout",
        value,
        "--store",
        store,
        `${registry.host}/dl/img:v1`,
      ]);
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, reason);
      assert.match(r.stderr, /hint: /);
    }
  });
});
