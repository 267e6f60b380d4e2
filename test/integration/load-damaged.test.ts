// `ferry load` of archives cut short or damaged: exit 6, the message and a hint, nothing stored.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cutShort } from "../../src/archive/test-support.ts";
import { describeRun, FERRY_BIN, type FerryResult, ferry, removeDir, tempDir } from "./cli.ts";

describe("ferry load of a damaged archive", () => {
  let work: string;
  let archive: string;
  const blob = `blobs/sha256/${"ab".repeat(32)}`;

  before(async () => {
    work = await tempDir("load-damaged");
    archive = join(work, "cut.tar");
    // A short body: the archive ends before the store reads the entry.
    await writeFile(archive, await cutShort(blob, 8 * 2 ** 30, Buffer.alloc(1000, 7)));
  });
  after(() => removeDir(work));

  async function assertTruncated(r: FerryResult, source: string, store: string): Promise<void> {
    assert.equal(r.code, 6, describeRun(r));
    assert.equal(
      r.stderr.split("\n")[0],
      `ferry: archive ${source}: entry "${blob}": the archive is truncated: it ends inside this entry`,
      describeRun(r),
    );
    assert.match(r.stderr, /\n {2}hint: .*nothing was recorded/, describeRun(r));
    assert.deepEqual(await readdir(join(store, "blobs", "sha256")), []);
    assert.deepEqual(await readdir(join(store, "ferry", "ingest")).catch(() => []), []);
    const index = JSON.parse(await readFile(join(store, "index.json"), "utf8"));
    assert.deepEqual(index.manifests, []);
  }

  test("an entry declaring 8 GiB, then the end: the truncated-archive error, exit 6", async () => {
    const store = join(work, "store-file");
    await assertTruncated(await ferry(["load", "--store", store, "-i", archive]), archive, store);
  });

  test("the same on stdin", async () => {
    const store = join(work, "store-stdin");
    const shell = `"${process.execPath}" "${FERRY_BIN}" load --store "${store}" < "${archive}"`;
    const r = await new Promise<FerryResult>((resolve) =>
      execFile("sh", ["-c", shell], (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : Number(err.code), signal: null, stdout, stderr }),
      ),
    );
    await assertTruncated(r, "stdin", store);
  });
});
