import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { digestOf } from "../digest/index.ts";
import { SinkPool } from "./sink-pool.ts";
import { type BlobSink, LocalSink, Store } from "../store/index.ts";
import { transferBlob } from "./transfer.ts";

const pool = new SinkPool(1);
after(() => pool.close());

const kinds: Array<[string, () => BlobSink]> = [
  ["LocalSink", () => new LocalSink()],
  ["worker sink", () => pool.createSink()],
];

describe("transferBlob restarting from zero", () => {
  for (const [name, make] of kinds) {
    it(`${name}: a source that ignores Range restarts the download in a new file, leaving the old one to its readers`, async () => {
      const data = randomBytes(512 * 1024);
      const digest = digestOf(data);
      // A source that answers every request, Range or not, with 200 and the whole blob
      // (some storage backends and CDNs behind registries, or a peer, do).
      const ranges: Array<string | undefined> = [];
      const server = createServer((req, res) => {
        ranges.push(req.headers.range);
        res.writeHead(200, { "content-length": String(data.length) }).end(data);
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      const { port } = server.address() as { port: number };
      const dir = await mkdtemp(join(tmpdir(), "ferry-transfer-"));
      const store = await Store.open(dir);
      const path = store.ingestPath(digest);
      // An earlier attempt left a prefix (here: not even the right bytes, as from a liar).
      const oldPrefix = randomBytes(100_000);
      await writeFile(path, oldPrefix);
      // A stream serving that prefix holds the file open, as the mirror and the peer listener do.
      const reader = await open(path, "r");
      try {
        const inode = (await reader.stat()).ino;
        const desc = { mediaType: "application/octet-stream", digest, size: data.length };
        const writer = await store.ingest(desc, { sink: make });
        assert.ok(writer !== undefined);
        const result = await transferBlob(
          {
            url: `http://127.0.0.1:${port}/v2/team/app/blobs/${digest}`,
            headers: {},
            host: `127.0.0.1:${port}`,
            repository: "team/app",
          },
          writer,
          () => {},
        );
        await writer.close();
        assert.deepEqual(ranges, ["bytes=100000-", undefined]);
        assert.equal(result.kind, "complete");
        assert.deepEqual(await readFile(path), data);
        // The restart went into a new file: the streams' inode check sees it...
        assert.notEqual((await stat(path)).ino, inode);
        // ...and the file they hold was never overwritten with bytes of another download.
        const { size } = await reader.stat();
        assert.equal(size, oldPrefix.length);
        const held = Buffer.alloc(size);
        await reader.read(held, 0, size, 0);
        assert.deepEqual(held, oldPrefix);
      } finally {
        await reader.close();
        server.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
