import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeAtomic } from "./image-sources.ts";

// The agent's list file as the node agent writes it, on a real directory.

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-list-file-"));
});
after(() => rm(work, { recursive: true, force: true }));

describe("writeAtomic (the list file)", () => {
  it("replaces the list and leaves no temp file", async () => {
    const path = join(work, "a", "images.yaml");
    await writeAtomic(path, "images: []\n");
    await writeAtomic(path, "images: [x]\n");
    assert.equal(await readFile(path, "utf8"), "images: [x]\n");
    assert.deepEqual(await readdir(join(work, "a")), ["images.yaml"]);
  });

  it("a write that fails leaves no temp file beside the list", async () => {
    const dir = join(work, "b");
    const path = join(dir, "images.yaml");
    await mkdir(join(path, "in-the-way"), { recursive: true });
    await assert.rejects(writeAtomic(path, "images: []\n"));
    assert.deepEqual(await readdir(dir), ["images.yaml"]);
  });
});
