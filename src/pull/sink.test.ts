import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { digestOf } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import { SinkPool } from "./sink-pool.ts";
import { type BlobSink, LocalSink } from "../store/index.ts";

const pool = new SinkPool(2);
after(() => pool.close());

const kinds: Array<[string, () => BlobSink]> = [
  ["LocalSink", () => new LocalSink()],
  ["worker sink", () => pool.createSink()],
];

for (const [name, make] of kinds) {
  describe(name, () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = digestOf(data);

    async function feed(sink: BlobSink, bytes: Buffer, step = 100_000): Promise<void> {
      for (let i = 0; i < bytes.length; i += step) {
        const wait = sink.write(bytes.subarray(i, i + step));
        if (wait !== undefined) await wait;
      }
    }

    it("writes and verifies a blob", async () => {
      const dir = await mkdtemp(join(tmpdir(), "ferry-sink-"));
      const path = join(dir, "blob.partial");
      const sink = make();
      await sink.open(path, digest, data.length, 0);
      await feed(sink, data);
      await sink.finish();
      assert.deepEqual(await readFile(path), data);
      await rm(dir, { recursive: true });
    });

    it("writes a blob larger than the early-flush interval (32 MiB) intact", async () => {
      const dir = await mkdtemp(join(tmpdir(), "ferry-sink-"));
      const path = join(dir, "blob.partial");
      const big = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(70 * 1024 * 1024 + 3, 7)]);
      const sink = make();
      await sink.open(path, digestOf(big), big.length, 0);
      await feed(sink, big, 1 << 20);
      await sink.finish();
      assert.ok((await readFile(path)).equals(big));
      await rm(dir, { recursive: true });
    });

    it("resumes: re-hashes the bytes already in the file", async () => {
      const dir = await mkdtemp(join(tmpdir(), "ferry-sink-"));
      const path = join(dir, "blob.partial");
      const half = 1_000_003;
      await writeFile(path, data.subarray(0, half));
      const sink = make();
      await sink.open(path, digest, data.length, half);
      await feed(sink, data.subarray(half));
      await sink.finish();
      assert.deepEqual(await readFile(path), data);
      await rm(dir, { recursive: true });
    });

    it("rejects corrupted content and deletes the file", async () => {
      const dir = await mkdtemp(join(tmpdir(), "ferry-sink-"));
      const path = join(dir, "blob.partial");
      const bad = Buffer.from(data);
      bad[12345] = (bad[12345] as number) ^ 0xff;
      const sink = make();
      await sink.open(path, digest, data.length, 0);
      await feed(sink, bad);
      await assert.rejects(sink.finish(), (e) => isFerryError(e, "FERRY_DIGEST_MISMATCH"));
      await assert.rejects(stat(path), { code: "ENOENT" });
      await rm(dir, { recursive: true });
    });

    it("rejects a body longer than the descriptor says", async () => {
      const dir = await mkdtemp(join(tmpdir(), "ferry-sink-"));
      const path = join(dir, "blob.partial");
      const sink = make();
      await sink.open(path, digest, data.length, 0);
      const rejected = (async () => {
        await feed(sink, Buffer.concat([data, Buffer.alloc(1000)]));
        await sink.finish();
      })();
      await assert.rejects(rejected, (e) => isFerryError(e, "FERRY_SIZE_MISMATCH"));
      await sink.abort();
      await rm(dir, { recursive: true, force: true });
    });
  });
}
