// A full disk, for real: the store (and the mirror's store) on a tmpfs of a chosen size.
// A pull that does not fit fails with exit 7 and leaves nothing behind; a partial left by a
// killed pull is shown by `df` and removed by `prune`; the mirror and the agent keep serving,
// report it and recover when space returns.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, open, readdir, rm, stat, writeFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
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
  ndjson,
  readStoreIndex,
  removeDir,
  startFerry,
  tempDir,
  until,
} from "./cli.ts";

const run = promisify(execFile);
const MB = 1_000_000;
const DISK_FULL = 7;

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

/** Every file under `dir` whose name marks a temp file (a half-done write). */
async function tempFiles(dir: string): Promise<string[]> {
  const all = (await readdir(dir, { recursive: true })) as string[];
  return all.filter((p) => /\.tmp-\d+-[0-9a-f]{8}$/.test(p));
}

/** Fills the filesystem holding `path` to its last byte with one file (removed to free the space). */
async function fillDisk(path: string): Promise<void> {
  const file = await open(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          await file.write(chunk, 0, size);
        } catch (err) {
          if ((err as { code?: string }).code !== "ENOSPC") throw err;
          break;
        }
      }
    }
  } finally {
    await file.close();
  }
}

/** One GET on its own connection; a body cut short (or a reset) is reported, not thrown. */
function fetchText(url: string): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve) => {
    httpGet(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      const done = (complete: boolean) =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          complete,
        });
      res.on("end", () => done(true));
      res.on("error", () => done(false));
      res.on("aborted", () => done(false));
    }).on("error", () => resolve({ status: 0, body: "", complete: false }));
  });
}

describe("a full disk (tmpfs)", () => {
  let registry: RunningRegistry;
  let work: string;
  let big: BuiltImage;
  let small: BuiltImage;
  let medium: BuiltImage;
  const mounts: string[] = [];
  const proxies: RunningProxy[] = [];
  let ref: (name: string) => string;

  /** A fresh tmpfs of `mib` MiB; unmounted after the tests. */
  async function tmpfs(mib: number): Promise<string> {
    const dir = join(work, `fs-${mounts.length}`);
    await mkdir(dir);
    await run("mount", ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir]);
    mounts.push(dir);
    return dir;
  }

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("disk-full");
    ref = (name) => `${registry.host}/${name}`;
    [big, small, medium] = await Promise.all([
      pushImage(registry.host, "full/big", "v1", {
        layers: [[{ path: "big.bin", size: 24 * MB }]],
        compression: "none",
      }),
      pushImage(registry.host, "full/small", "v1", {
        layers: [[{ path: "small.bin", size: 2 * MB }]],
        compression: "none",
      }),
      pushImage(registry.host, "full/medium", "v1", {
        layers: [[{ path: "medium.bin", size: 3 * MB }]],
        compression: "none",
      }),
    ]);
    // The same image under a second tag: pulling it downloads nothing, only records a name.
    await pushImage(registry.host, "full/small", "v2", {
      layers: [[{ path: "small.bin", size: 2 * MB }]],
      compression: "none",
    });
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    for (const dir of mounts) await run("umount", [dir]).catch(() => undefined);
    await registry?.stop();
    await removeDir(work);
  });

  test("a pull larger than the disk fails with exit 7, keeps no partial, and the next pull works", async () => {
    const store = join(await tmpfs(16), "store");
    const r = await ferry(["pull", "--store", store, ref("full/big:v1")]);
    assertExit(r, DISK_FULL);
    assert.match(r.stderr, /no space left on the device holding /);
    assert.match(r.stderr, /hint: run `ferry prune`/);
    assert.doesNotMatch(r.stderr, /bug in ferry|FERRY_INTERNAL|\n\s+at /);
    assert.deepEqual(
      (await ingestFiles(store)).filter((f) => f.endsWith(".partial")),
      [],
      "the failed pull's partials are gone",
    );
    assert.deepEqual(await entriesFor(store, ref("full/big:v1")), []);
    assertExit(await ferry(["pull", "-q", "--store", store, ref("full/small:v1")]), 0);
  });

  test("a killed pull's partial fills the disk: df shows it, prune removes it, the small pull then works", async () => {
    const store = join(await tmpfs(16), "store");
    const layer = big.layers[0];
    assert.ok(layer);
    const stallAt = 15_200_000;
    const stalling = await startProxy({ target: registry.host, stallAfterBytes: stallAt });
    proxies.push(stalling);
    const partial = join(store, "ferry", "ingest", `${layer.digest.slice(7)}.partial`);
    const killed = startFerry(["pull", "--store", store, `${stalling.host}/full/big:v1`]);
    await until(
      "the partial to reach the stall",
      async () => {
        if (killed.child.exitCode !== null)
          assert.fail(`the pull ended first:\n${describeRun(await killed.result)}`);
        const size = await stat(partial).then(
          (s) => s.size,
          () => 0,
        );
        return size >= stallAt ? true : undefined;
      },
      60_000,
    );
    killed.child.kill("SIGKILL");
    await killed.result;

    const failed = await ferry(["pull", "--store", store, ref("full/small:v1")]);
    assertExit(failed, DISK_FULL);
    assert.deepEqual(
      (await ingestFiles(store)).filter((f) => f.endsWith(".partial")),
      [`${layer.digest.slice(7)}.partial`],
      "only the killed pull's partial is left",
    );

    const df = await ferry(["df", "--json", "--store", store]);
    assertExit(df, 0);
    const usage = JSON.parse(df.stdout) as {
      partials: { count: number; bytes: number };
      reclaimableBytes: number;
    };
    assert.deepEqual(usage.partials, { count: 1, bytes: stallAt });
    assert.ok(usage.reclaimableBytes >= stallAt, df.stdout);
    const dfText = await ferry(["df", "--store", store]);
    assert.match(dfText.stdout, /^Partial downloads: 1 \(15\.2MB\)/m);

    const pruned = await ferry(["prune", "--store", store]);
    assertExit(pruned, 0);
    assert.deepEqual(await ingestFiles(store), []);
    assertExit(await ferry(["pull", "-q", "--store", store, ref("full/small:v1")]), 0);
    assert.equal((await entriesFor(store, ref("full/small:v1"))).length, 1);
  });

  test("a disk full to the last byte: recording a name is FERRY_DISK_FULL (exit 7), nothing half-written", async () => {
    const fs = await tmpfs(8);
    const store = join(fs, "store");
    assertExit(await ferry(["pull", "-q", "--store", store, ref("full/small:v1")]), 0);
    const indexBefore = await readStoreIndex(store);
    await fillDisk(join(fs, "filler"));

    // Every blob is stored already: only the lease, index.json and the use record are written.
    const r = await ferry(["pull", "--json", "--store", store, ref("full/small:v2")]);
    assertExit(r, DISK_FULL);
    const error = ndjson(r.stdout).find((e) => e.event === "error");
    assert.equal(error?.code, "FERRY_DISK_FULL", describeRun(r));
    assert.match(String(error?.hint), /ferry prune/);
    assert.deepEqual(await readStoreIndex(store), indexBefore, "index.json is whole and unchanged");
    assert.deepEqual(await tempFiles(store), []);
    assert.deepEqual(await readdir(join(store, "ferry", "leases")), []);

    await rm(join(fs, "filler"));
    assertExit(await ferry(["pull", "-q", "--store", store, ref("full/small:v2")]), 0);
    assert.equal((await entriesFor(store, ref("full/small:v2"))).length, 1);
  });

  test("prune --all on a disk full to the last byte of stored images makes room and works", async () => {
    const fs = await tmpfs(8);
    const store = join(fs, "store");
    assertExit(await ferry(["pull", "-q", "--store", store, ref("full/small:v1")]), 0);
    await fillDisk(join(fs, "filler"));
    const pruned = await ferry(["prune", "--all", "--store", store]);
    assertExit(pruned, 0);
    assert.deepEqual((await readStoreIndex(store)).manifests, []);
    assert.deepEqual(await readdir(join(store, "blobs", "sha256")), []);
    assert.deepEqual(await tempFiles(store), []);
  });

  test("ferry load into a full store: FERRY_DISK_FULL (exit 7), no temp file or partial left", async () => {
    const roomy = join(work, "roomy-store");
    const archive = join(work, "small.tar");
    assertExit(await ferry(["pull", "-q", "--store", roomy, ref("full/small:v1")]), 0);
    assertExit(await ferry(["save", ref("full/small:v1"), "-o", archive, "--store", roomy]), 0);
    const fs = await tmpfs(8);
    const store = join(fs, "store");
    assertExit(await ferry(["df", "--store", store]), 0); // creates the store while there is room
    await fillDisk(join(fs, "filler"));

    const r = await ferry(["load", "--json", "-i", archive, "--store", store]);
    assertExit(r, DISK_FULL);
    const error = ndjson(r.stdout).find((e) => e.event === "error");
    assert.equal(error?.code, "FERRY_DISK_FULL", describeRun(r));
    assert.deepEqual(await tempFiles(store), []);
    assert.deepEqual(
      (await ingestFiles(store)).filter((f) => f.endsWith(".partial")),
      [],
    );
    assert.deepEqual((await readStoreIndex(store)).manifests, []);
  });

  test("the mirror on a full disk keeps serving what it holds, reports it, and recovers when space returns", async () => {
    const fs = await tmpfs(16);
    const store = join(fs, "store");
    const mirror = startFerry([
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--store",
      store,
      "--upstream",
      registry.url,
    ]);
    let log = "";
    mirror.child.stderr?.on("data", (c: Buffer) => {
      log += c.toString("utf8");
    });
    try {
      const url = await until("the mirror to listen", async () => {
        if (mirror.child.exitCode !== null)
          assert.fail(`the mirror did not start\n${describeRun(await mirror.result)}`);
        return /"msg":"mirror listening"[^\n]*"url":"([^"]+)"/.exec(log)?.[1];
      });
      const blob = (image: BuiltImage, name: string) =>
        fetchText(`${url}/v2/full/${name}/blobs/${image.layers[0]?.digest}`);
      const disk = async (path: string) =>
        (JSON.parse((await fetchText(`${url}${path}`)).body) as { disk: { full: boolean } }).disk;
      const gauge = async () =>
        /^ferry_mirror_store_disk_full (\d)$/m.exec((await fetchText(`${url}/metrics`)).body)?.[1];

      // A miss that fits: now in the store.
      assert.equal((await fetchText(`${url}/v2/full/small/manifests/v1`)).status, 200);
      assert.equal((await blob(small, "small")).status, 200);
      assert.equal((await disk("/readyz")).full, false);

      await fillDisk(join(fs, "filler"));
      const miss = await blob(medium, "medium");
      assert.ok(miss.status !== 200 || !miss.complete, "a miss cannot be stored on a full disk");
      await until("the mirror to notice", async () =>
        (await disk("/readyz")).full ? true : undefined,
      );
      // A hit marks the image used (a utimes, which a full disk allows): still full.
      assert.equal((await fetchText(`${url}/v2/full/small/manifests/v1`)).status, 200);
      const ready = await fetchText(`${url}/readyz`);
      assert.equal((JSON.parse(ready.body) as { disk: { full: boolean } }).disk.full, true);
      assert.equal(ready.status, 200, "a full mirror still serves what it holds");
      assert.equal((await disk("/status")).full, true);
      assert.equal(await gauge(), "1");
      const hit = await blob(small, "small");
      assert.equal(hit.status, 200);
      assert.ok(hit.complete);
      assert.deepEqual(
        (await ingestFiles(store)).filter((f) => f.endsWith(".partial")),
        [],
        "the failed miss left no partial",
      );

      await rm(join(fs, "filler"));
      await until("the mirror to recover", async () =>
        (await disk("/readyz")).full ? undefined : true,
      );
      assert.equal((await disk("/status")).full, false);
      assert.equal(await gauge(), "0");
      const after = await blob(medium, "medium");
      assert.equal(after.status, 200);
      assert.ok(after.complete);
    } finally {
      mirror.child.kill("SIGTERM");
      await mirror.result;
    }
  });

  test("the agent on a full disk reports it and recovers when space returns", async () => {
    const fs = await tmpfs(16);
    const store = join(fs, "store");
    assertExit(await ferry(["df", "--store", store]), 0); // creates the store while there is room
    const list = join(work, "agent-list.yaml");
    await writeFile(list, `images:\n  - ${ref("full/small:v1")}\n`);
    await fillDisk(join(fs, "filler"));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const agent = startFerry([
      "agent",
      "-f",
      list,
      "--listen",
      `127.0.0.1:${port}`,
      "--store",
      store,
      "--schedule",
      "*/1 * * * * *",
    ]);
    try {
      const readyz = async () => {
        const r = await fetchText(`${url}/readyz`);
        if (r.status === 0) return undefined;
        return { status: r.status, ...(JSON.parse(r.body) as { disk: { full: boolean } }) };
      };
      const full = await until("the agent to find the disk full", async () => {
        if (agent.child.exitCode !== null)
          assert.fail(`the agent ended\n${describeRun(await agent.result)}`);
        const r = await readyz();
        return r?.disk.full ? r : undefined;
      });
      assert.equal(full.status, 503, "the required image is missing");
      const status = JSON.parse((await fetchText(`${url}/status`)).body) as {
        disk: { full: boolean; message: string };
      };
      assert.equal(status.disk.full, true);
      assert.match(status.disk.message, /no space left/);
      assert.match((await fetchText(`${url}/metrics`)).body, /^ferry_agent_store_disk_full 1$/m);

      await rm(join(fs, "filler"));
      const recovered = await until("the agent to recover", async () => {
        const r = await readyz();
        return r !== undefined && r.status === 200 && !r.disk.full ? r : undefined;
      });
      assert.equal(recovered.disk.full, false);
      assert.match((await fetchText(`${url}/metrics`)).body, /^ferry_agent_store_disk_full 0$/m);
    } finally {
      agent.child.kill("SIGTERM");
      await agent.result;
    }
  });
});
