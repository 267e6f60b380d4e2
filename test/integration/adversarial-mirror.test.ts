// Hostile and unusual HTTP clients of `ferry mirror`: a HEAD must answer with the headers the
// same GET would, whether the blob is already stored or not (a cold miss).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { removeDir, tempDir } from "./cli.ts";
import { get, mirrors, startMirror } from "./mirror-process.ts";

/** What a client learns from an answer's head: status and the headers that describe the body. */
function headOf(got: { status: number; headers: Record<string, unknown> }) {
  return {
    status: got.status,
    length: got.headers["content-length"],
    range: got.headers["content-range"],
  };
}

describe("ferry mirror: HEAD answers as GET would", () => {
  let work: string;
  let registry: RunningRegistry;
  let image: BuiltImage;

  before(async () => {
    work = await tempDir("adversarial-mirror");
    registry = await startRegistry();
    image = await pushImage(registry.host, "lib/ranged", "v1", {
      layers: [[{ path: "data/r.bin", size: 300_000 }]],
      level: 0,
    });
  });

  after(async () => {
    await Promise.all(mirrors.map((m) => m.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  for (const range of ["bytes=0-9", "bytes=-5", "bytes=99999999-"]) {
    test(`HEAD with Range ${range} on a cold miss, then GET, then HEAD again`, async () => {
      const m = await startMirror(join(work, `store-${range.replace(/\W/g, "")}`), [
        "--upstream",
        registry.url,
      ]);
      const path = `/v2/lib/ranged/blobs/${image.layers[0]?.digest}`;
      const headers = { range };
      const coldHead = await get(`${m.url}${path}`, { method: "HEAD", headers });
      const got = await get(`${m.url}${path}`, { headers });
      const storedHead = await get(`${m.url}${path}`, { method: "HEAD", headers });
      assert.notEqual(got.status, 200, `GET ${range} answers the range (206) or refuses it (416)`);
      assert.deepEqual(
        headOf(storedHead),
        headOf(got),
        "HEAD after the GET (stored, or still not for a 416)",
      );
      assert.deepEqual(headOf(coldHead), headOf(got), "HEAD of a blob not yet stored");
    });
  }
});
