// Many images pulled by one `ferry pull` into one fresh store: every concurrent pull of the
// process takes the store's index lock (leases, records), and none may wait on its own process.
import assert from "node:assert/strict";
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { describeRun, ferry, lines, readStoreIndex, REF_NAME, removeDir, tempDir } from "./cli.ts";

const IMAGES = 25;
/** Before the fix about one round in fifty went wrong (a 60 s timeout, or a name lost): this many catch it about one test run in three. */
const ROUNDS = 20;

describe("one process, many pulls, one store", () => {
  let registry: RunningRegistry;
  let work: string;
  const refs: string[] = [];

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("store-lock");
    await Promise.all(
      Array.from({ length: IMAGES }, async (_, i) => {
        await pushImage(registry.host, `many/img${i}`, "v1", {
          layers: [
            [{ path: "shared.bin", size: 2_000, seed: "shared" }],
            [{ path: `own-${i}.bin`, size: 1_000 + i }],
          ],
          compression: "none",
        });
        refs[i] = `${registry.host}/many/img${i}:v1`;
      }),
    );
  });

  after(async () => {
    await registry?.stop();
    await removeDir(work);
  });

  test(`${IMAGES} images in one command, ${ROUNDS} times into fresh stores: all recorded, no lock left`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const store = join(work, `store-${round}`);
      const r = await ferry(["pull", "-q", "--store", store, ...refs]);
      assert.equal(r.code, 0, `round ${round}: ${describeRun(r)}`);
      assert.deepEqual(lines(r.stdout).sort(), [...refs].sort());
      const recorded = (await readStoreIndex(store)).manifests.map(
        (m) => m.annotations?.[REF_NAME],
      );
      assert.deepEqual(recorded.sort(), [...refs].sort(), `round ${round}: index.json lost a name`);
      await assert.rejects(lstat(join(store, "ferry", "index.lock")), { code: "ENOENT" });
    }
  });
});
