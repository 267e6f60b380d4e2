import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { appendFile, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fetchBlob, serveBlobs } from "../../test/fixtures/blob-http.ts";
import { until } from "../../test/fixtures/until.ts";
import { type GrowingOutcome, type GrowingRequest, serveGrowingBlob } from "./growing.ts";

/**
 * Writes a blob into an ingest file in steps the test releases, then checks its sha256
 * against the expected digest: a match is renamed into place, a mismatch deleted and refused.
 */
class SteppedWriter {
  readonly ingestPath: string;
  readonly blobPath: string;
  readonly size: number;
  readonly #expected: string;
  readonly #chunks: Buffer[];
  readonly #release: Array<() => void> = [];
  readonly #steps: Array<Promise<void>> = [];
  fetches = 0;
  /** Delete the partial after the first chunk and start a new file (a failed check, then a retry). */
  restartAfterFirst = false;

  constructor(dir: string, expected: Buffer, chunks: Buffer[]) {
    this.ingestPath = join(dir, "ingest", "blob.partial");
    this.blobPath = join(dir, "blobs", "blob");
    this.size = expected.length;
    this.#expected = createHash("sha256").update(expected).digest("hex");
    this.#chunks = chunks;
    for (let i = 0; i <= chunks.length; i++)
      this.#steps.push(new Promise<void>((resolve) => this.#release.push(resolve)));
  }

  step(i: number): void {
    this.#release[i]?.();
  }

  async fetch(watch: (bytes: number) => void): Promise<void> {
    this.fetches++;
    const hash = createHash("sha256");
    let written = 0;
    for (const [i, chunk] of this.#chunks.entries()) {
      await this.#steps[i];
      if (i === 1 && this.restartAfterFirst) {
        await rm(this.ingestPath);
        written = 0;
      }
      await appendFile(this.ingestPath, chunk);
      hash.update(chunk);
      written += chunk.length;
      watch(written);
    }
    await this.#steps[this.#chunks.length];
    if (hash.digest("hex") !== this.#expected) {
      await rm(this.ingestPath);
      throw new Error("digest mismatch");
    }
    await rename(this.ingestPath, this.blobPath);
  }
}

describe("serveGrowingBlob", () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ferry-serve-growing-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A server that answers every request from `writer` (the caller's replies as the peer's). */
  async function serving(
    writer: SteppedWriter,
    request: Omit<GrowingRequest, "range" | "headers">,
    outcomes: GrowingOutcome[] = [],
  ) {
    return serveBlobs(async (req, res) => {
      const outcome = await serveGrowingBlob(
        res,
        {
          ingestPath: writer.ingestPath,
          blobPath: writer.blobPath,
          size: writer.size,
          fetch: (watch) => writer.fetch(watch),
        },
        { ...request, range: req.headers.range, headers: { "docker-content-digest": "d" } },
      );
      outcomes.push(outcome);
      if (outcome === "restarted") res.writeHead(503).end();
      else if (typeof outcome === "object") res.writeHead(502).end();
    });
  }

  async function writerFor(expected: Buffer, chunks: Buffer[]): Promise<SteppedWriter> {
    const dir = join(root, String(++n));
    await mkdir(join(dir, "ingest"), { recursive: true });
    await mkdir(join(dir, "blobs"), { recursive: true });
    return new SteppedWriter(dir, expected, chunks);
  }

  for (const announce of ["at-once", "with-first-byte"] as const) {
    it(`streams the file as it grows, the last byte only once verified (${announce})`, async () => {
      const chunks = [randomBytes(300_000), randomBytes(300_000)];
      const bytes = Buffer.concat(chunks);
      const writer = await writerFor(bytes, chunks);
      const server = await serving(writer, { announce });
      try {
        const progress = { bytes: 0 };
        const response = fetchBlob(server.url, { progress });
        writer.step(0);
        await until("the first chunk sent", () => progress.bytes >= 300_000);
        writer.step(1);
        await until("all but the last byte sent", () => progress.bytes >= bytes.length - 1);
        assert.equal(progress.bytes, bytes.length - 1, "the last byte waits for the check");
        writer.step(2);
        const got = await response;
        assert.equal(got.status, 200);
        assert.equal(got.headers["content-length"], String(bytes.length));
        assert.ok(got.complete);
        assert.ok(got.body.equals(bytes));
      } finally {
        await server.close();
      }
    });
  }

  it("a writer whose bytes fail verification: the client never gets the last byte, the connection is cut", async () => {
    const good = randomBytes(200_000);
    const chunks = [randomBytes(100_000), randomBytes(100_000)]; // not `good`: the check fails
    const writer = await writerFor(good, chunks);
    const outcomes: GrowingOutcome[] = [];
    const server = await serving(writer, { announce: "at-once" }, outcomes);
    try {
      const progress = { bytes: 0 };
      const response = fetchBlob(server.url, { progress });
      writer.step(0);
      writer.step(1);
      await until("all but the last byte sent", () => progress.bytes >= good.length - 1);
      writer.step(2);
      const got = await response;
      assert.equal(got.status, 200);
      assert.equal(got.complete, false, "the response was aborted");
      assert.equal(got.body.length, good.length - 1, "the last byte never went out");
      await until("the handler returned", () => outcomes.length > 0);
      assert.deepEqual(outcomes, ["cut"]);
    } finally {
      await server.close();
    }
  });

  it("a download that fails before any byte is the caller's to answer (with-first-byte)", async () => {
    const good = randomBytes(1000);
    const writer = await writerFor(good, [randomBytes(1000)]);
    const outcomes: GrowingOutcome[] = [];
    const server = await serving(writer, { announce: "with-first-byte" }, outcomes);
    try {
      const response = fetchBlob(server.url, { range: "bytes=999-" }); // only the last byte: nothing before the check
      writer.step(0);
      writer.step(1);
      const got = await response;
      assert.equal(got.status, 502);
      assert.equal(outcomes.length, 1);
      assert.match(String((outcomes[0] as { failed: Error }).failed.message), /digest mismatch/);
    } finally {
      await server.close();
    }
  });

  it("serves a range of a growing blob: 206, from its start, the blob's last byte after the check", async () => {
    const chunks = [randomBytes(100_000), randomBytes(100_000)];
    const bytes = Buffer.concat(chunks);
    const writer = await writerFor(bytes, chunks);
    const server = await serving(writer, { announce: "with-first-byte" });
    try {
      const progress = { bytes: 0 };
      const response = fetchBlob(server.url, { range: "bytes=150000-", progress });
      writer.step(0);
      writer.step(1);
      await until("the range but its last byte sent", () => progress.bytes >= 49_999);
      assert.equal(progress.bytes, 49_999);
      writer.step(2);
      const got = await response;
      assert.equal(got.status, 206);
      assert.equal(got.headers["content-range"], `bytes 150000-199999/200000`);
      assert.ok(got.complete);
      assert.ok(got.body.equals(bytes.subarray(150_000)));
    } finally {
      await server.close();
    }
  });

  it("416 for a range past the end, without starting the download", async () => {
    const bytes = randomBytes(1000);
    const writer = await writerFor(bytes, [bytes]);
    const server = await serving(writer, { announce: "at-once" });
    try {
      const got = await fetchBlob(server.url, { range: "bytes=1000-" });
      assert.equal(got.status, 416);
      assert.equal(got.headers["content-range"], "bytes */1000");
      assert.equal(writer.fetches, 0);
    } finally {
      await server.close();
    }
  });

  it("cuts the response when the download restarts in a new file after bytes went out", async () => {
    const good = randomBytes(110_000);
    const writer = await writerFor(good, [Buffer.alloc(50_000, 1), randomBytes(60_000)]);
    writer.restartAfterFirst = true;
    const outcomes: GrowingOutcome[] = [];
    const server = await serving(writer, { announce: "with-first-byte" }, outcomes);
    try {
      const progress = { bytes: 0 };
      const response = fetchBlob(server.url, { progress });
      writer.step(0);
      await until("the first (bad) bytes sent", () => progress.bytes >= 50_000);
      writer.step(1);
      writer.step(2);
      const got = await response;
      assert.equal(got.complete, false, "no complete body");
      await until("the handler returned", () => outcomes.length > 0);
      assert.deepEqual(outcomes, ["cut"]);
    } finally {
      await server.close();
    }
  });
});
