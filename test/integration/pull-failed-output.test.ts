// What a failed pull prints: the error last, nothing from the blob fetches still in flight.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  describeRun,
  entriesFor,
  FERRY_BIN,
  ferry,
  ndjson,
  removeDir,
  shortId,
  tempDir,
} from "./cli.ts";

const run = promisify(execFile);
const ESC = String.fromCharCode(27);

/** The registry's own API removes the blob: it then answers 404 BLOB_UNKNOWN. */
function deleteBlob(host: string, repository: string, digest: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(`http://${host}/v2/${repository}/blobs/${digest}`, { method: "DELETE", agent: false })
      .on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      })
      .on("error", reject)
      .end();
  });
}

describe("a pull that fails while other blobs are in flight", () => {
  let registry: RunningRegistry;
  let slow: RunningProxy;
  let work: string;
  let image: BuiltImage;
  let name: string;
  let storeCount = 0;
  const newStore = () => join(work, `store-${++storeCount}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("pull-failed-output");
    image = await pushImage(registry.host, "failing/img", "v1", {
      layers: [
        [{ path: "etc/missing", content: "this layer goes missing\n" }],
        [{ path: "big-1.bin", size: 1_500_000 }],
        [{ path: "big-2.bin", size: 1_500_000 }],
      ],
      compression: "none",
    });
    const missing = image.layers[0]?.digest ?? "";
    assert.equal(await deleteBlob(registry.host, "failing/img", missing), 202);
    // The big layers take over a second: they are still downloading when the small one fails.
    slow = await startProxy({ target: registry.host, bytesPerSecond: 1_000_000 });
    name = `${slow.host}/failing/img:v1`;
  });

  after(async () => {
    await slow?.stop();
    await registry?.stop();
    await removeDir(work);
  });

  const bigLayers = () => image.layers.slice(1).map((l) => l.digest);

  test("plain: no `Pull complete` for the layers still downloading when it failed", async () => {
    const store = newStore();
    const r = await ferry(["pull", "--store", store, name]);
    assert.equal(r.code, 3, describeRun(r));
    assert.match(r.stderr, /^ferry: .*not found/, describeRun(r));
    for (const digest of bigLayers()) {
      assert.ok(!r.stdout.includes(`${shortId(digest)}: Pull complete`), describeRun(r));
    }
    assert.deepEqual(await entriesFor(store, name), []);
  });

  test("--json: the error event is the last line", async () => {
    const r = await ferry(["pull", "--json", "--store", newStore(), name]);
    assert.equal(r.code, 3, describeRun(r));
    const events = ndjson(r.stdout);
    assert.equal(events.at(-1)?.["event"], "error", describeRun(r));
    assert.equal(events.filter((e) => e["event"] === "error").length, 1, describeRun(r));
  });

  test("terminal: no redraw after the error, which stays on screen whole", async () => {
    const command = `${process.execPath} ${FERRY_BIN} pull --store ${newStore()} ${name}`;
    // script -e exits with ferry's code, which execFile reports as an error.
    const failure = await run("script", ["-qfec", command, "/dev/null"], { encoding: "utf8" }).then(
      () => assert.fail("the pull succeeded"),
      (err: { code?: number; stdout?: string }) => err,
    );
    assert.equal(failure.code, 3);
    const stdout = failure.stdout ?? "";
    const at = stdout.indexOf("ferry: ");
    assert.ok(at >= 0, stdout);
    const after = stdout.slice(at);
    assert.ok(!after.includes(ESC), `escape codes after the error:\n${JSON.stringify(after)}`);
    assert.match(after, /not found[^\n]*\r?\n {2}hint: [^\n]+\r?\n$/);
  });
});
