// A reader that goes away (`ferry pull --json | head -1`): no stack trace, the work completes
// (or a command whose product is stdout stops with exit 141), and the store stays whole.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { request } from "node:http";
import type { Readable } from "node:stream";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  type FerryResult,
  ferry,
  removeDir,
  startFerry,
  tempDir,
  until,
  verifiedBlobs,
} from "./cli.ts";

/** Resolves with the first text that holds `wanted`, then closes the stream (the reader goes away). */
function closeAfter(stream: Readable | null, wanted: string | RegExp): Promise<string> {
  assert.ok(stream);
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (typeof wanted === "string" ? text.includes(wanted) : wanted.test(text)) {
        stream.off("data", onData);
        stream.destroy();
        resolve(text);
      }
    };
    stream.on("data", onData);
    stream.once("end", () => reject(new Error(`the stream ended without ${wanted}:\n${text}`)));
  });
}

function assertNoStackTrace(r: FerryResult): void {
  assert.doesNotMatch(r.stderr, /Unhandled 'error' event|\n\s+at |EPIPE/, describeRun(r));
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    })
      .on("error", reject)
      .end();
  });
}

describe("output whose reader went away", () => {
  let registry: RunningRegistry;
  let slow: RunningProxy;
  let work: string;
  let image: BuiltImage;
  let pulled: string;
  let storeCount = 0;
  const newStore = () => join(work, `store-${++storeCount}`);
  const blobsOf = (i: BuiltImage) => [i.configDigest, ...i.layers.map((l) => l.digest)];

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("closed-output");
    image = await pushImage(registry.host, "closed/img", "v1", {
      layers: [
        [{ path: "etc/os-release", content: "closed\n" }],
        [{ path: "data.bin", size: 1_500_000 }],
        [{ path: "more.bin", size: 1_500_000 }],
      ],
      compression: "none",
    });
    // Slow enough that the pull is still running when its reader goes away.
    slow = await startProxy({ target: registry.host, bytesPerSecond: 1_000_000 });
    pulled = newStore();
    const r = await ferry(["pull", "-q", "--store", pulled, `${registry.host}/closed/img:v1`]);
    assert.equal(r.code, 0, describeRun(r));
  });

  after(async () => {
    await slow?.stop();
    await registry?.stop();
    await removeDir(work);
  });

  async function assertPulled(store: string, name: string): Promise<void> {
    assert.equal((await entriesFor(store, name)).length, 1, `${name} is recorded in the store`);
    const blobs = await verifiedBlobs(store);
    for (const digest of blobsOf(image)) assert.ok(blobs.includes(digest), `${digest} is stored`);
  }

  test("pull --json | head -1: the pull completes, exit 0, the store is whole", async () => {
    const store = newStore();
    const name = `${slow.host}/closed/img:v1`;
    const run = startFerry(["pull", "--json", "--store", store, name]);
    await closeAfter(run.child.stdout, "\n");
    const r = await run.result;
    assertNoStackTrace(r);
    assert.equal(r.code, 0, describeRun(r));
    await assertPulled(store, name);
  });

  test("pull 2>&1 | head -1: stdout and stderr both gone, the pull still completes", async () => {
    const store = newStore();
    const name = `${slow.host}/closed/img:v1`;
    const run = startFerry(["pull", "--store", store, name]);
    await closeAfter(run.child.stdout, "Pulling from");
    run.child.stderr?.destroy();
    const r = await run.result;
    assert.equal(r.code, 0, describeRun(r));
    await assertPulled(store, name);
  });

  test("images with stdout closed before it writes: exit 0, no stack trace", async () => {
    const run = startFerry(["images", "--store", pulled]);
    run.child.stdout?.destroy();
    const r = await run.result;
    assertNoStackTrace(r);
    assert.equal(r.code, 0, describeRun(r));
  });

  test("save to stdout | head -c: exit 141 with the output-closed message, the store untouched", async () => {
    const run = startFerry(["save", "--store", pulled, `${registry.host}/closed/img:v1`]);
    await closeAfter(run.child.stdout, "oci-layout");
    const r = await run.result;
    assertNoStackTrace(r);
    assert.equal(r.code, 141, describeRun(r));
    assert.match(r.stderr, /^ferry: .*closed the pipe before the end\n {2}hint: /, describeRun(r));
    await assertPulled(pulled, `${registry.host}/closed/img:v1`);
  });

  test("lazy cat | head -c: exit 141 naming the file, no stack trace", async () => {
    const run = startFerry(["lazy", "cat", `${registry.host}/closed/img:v1`, "/data.bin"]);
    await closeAfter(run.child.stdout, ""); // the first bytes
    const r = await run.result;
    assertNoStackTrace(r);
    assert.equal(r.code, 141, describeRun(r));
    assert.match(r.stderr, /^ferry: stdout was closed before \/data\.bin was written in full\n/);
    assert.match(r.stderr, /\n {2}hint: /);
  });

  test("agent whose log reader went away: keeps warming, shuts down cleanly", async () => {
    const store = newStore();
    const list = join(work, "agent-list.txt");
    const name = `${slow.host}/closed/img:v1`;
    await writeFile(list, `${name}\n`);
    const run = startFerry([
      "agent",
      ...["-f", list, "--target", "store", "--store", store, "--listen", "127.0.0.1:0"],
    ]);
    await closeAfter(run.child.stderr, /"msg":"agent listening"[^\n]*\n/);
    // Its pull logs lines to the closed stderr: the agent must go on and record the image.
    await until("the agent to warm the image", async () =>
      (await entriesFor(store, name)).length === 1 ? true : undefined,
    );
    run.child.kill("SIGTERM");
    const r = await run.result;
    assert.equal(r.code, 0, describeRun(r));
    await assertPulled(store, name);
  });

  test("mirror whose log reader went away: keeps serving, shuts down cleanly", async () => {
    const run = startFerry([
      "mirror",
      "--listen",
      "127.0.0.1:0",
      "--store",
      newStore(),
      "--upstream",
      registry.url,
    ]);
    const log = await closeAfter(run.child.stderr, /"msg":"mirror listening"[^\n]*\n/);
    const url = String((/"url":"([^"]+)"/.exec(log) ?? [])[1]);
    // Serving writes log lines to the closed stderr: the mirror must go on answering.
    for (const digest of blobsOf(image)) {
      assert.equal(await getStatus(`${url}/v2/closed/img/blobs/${digest}`), 200);
    }
    assert.equal(await getStatus(`${url}/v2/closed/img/manifests/v1`), 200);
    run.child.kill("SIGTERM");
    const r = await run.result;
    assert.equal(r.code, 0, describeRun(r));
  });
});
