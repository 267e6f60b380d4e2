import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fetchBlob, type ServedBlobs, serveBlobs } from "../../test/fixtures/blob-http.ts";
import { serveStoredBlob } from "./stored.ts";

describe("serveStoredBlob", () => {
  let dir: string;
  let path: string;
  const bytes = randomBytes(3 * (1 << 20) + 17);
  const headers = { "docker-content-digest": "sha256:x", "accept-ranges": "bytes" };
  let server: ServedBlobs;
  const paced: number[] = [];
  const sent: number[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-serve-stored-"));
    path = join(dir, "blob");
    await writeFile(path, bytes);
    server = await serveBlobs(async (req, res) => {
      const file = await open(path, "r");
      try {
        await serveStoredBlob(res, file, {
          method: req.method ?? "GET",
          range: req.headers.range,
          headers,
          pace: { take: async (n) => void paced.push(n) },
          onSent: (n) => sent.push(n),
        });
      } finally {
        await file.close();
      }
    });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("sends the whole blob with its headers, through the upload cap", async () => {
    paced.length = 0;
    sent.length = 0;
    const got = await fetchBlob(server.url);
    assert.equal(got.status, 200);
    assert.ok(got.complete);
    assert.ok(got.body.equals(bytes));
    assert.equal(got.headers["content-length"], String(bytes.length));
    assert.equal(got.headers["docker-content-digest"], "sha256:x");
    assert.equal(got.headers["content-range"], undefined);
    assert.equal(
      paced.reduce((a, b) => a + b, 0),
      bytes.length,
      "every byte passed the upload cap",
    );
    assert.equal(
      sent.reduce((a, b) => a + b, 0),
      bytes.length,
    );
  });

  it("206 for a closed, an open-ended and a suffix range", async () => {
    const size = bytes.length;
    for (const [range, start, end] of [
      ["bytes=10-19", 10, 20],
      ["bytes=2000000-", 2_000_000, size],
      ["bytes=-100", size - 100, size],
      ["bytes=0-99999999", 0, size],
    ] as const) {
      const got = await fetchBlob(server.url, { range });
      assert.equal(got.status, 206, range);
      assert.equal(got.headers["content-range"], `bytes ${start}-${end - 1}/${size}`, range);
      assert.equal(got.headers["content-length"], String(end - start), range);
      assert.ok(got.body.equals(bytes.subarray(start, end)), range);
    }
  });

  it("200 with the whole blob for a malformed Range or several ranges", async () => {
    for (const range of ["bytes=abc", "bytes=9-3", "bytes=0-1,5-6", "lines=1-2"]) {
      const got = await fetchBlob(server.url, { range });
      assert.equal(got.status, 200, range);
      assert.ok(got.body.equals(bytes), range);
    }
  });

  it("416 with bytes */size for a range past the end", async () => {
    for (const range of [`bytes=${bytes.length}-`, "bytes=-0"]) {
      const got = await fetchBlob(server.url, { range });
      assert.equal(got.status, 416, range);
      assert.equal(got.headers["content-range"], `bytes */${bytes.length}`, range);
      assert.equal(got.body.length, 0, range);
    }
  });

  it("HEAD: the same headers, no body", async () => {
    const got = await fetchBlob(server.url, { method: "HEAD", range: "bytes=5-" });
    assert.equal(got.status, 206);
    assert.equal(got.headers["content-length"], String(bytes.length - 5));
    assert.equal(got.body.length, 0);
  });
});
