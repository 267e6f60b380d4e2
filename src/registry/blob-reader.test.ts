import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isFerryError } from "../observe/index.ts";
import { type BlobRequest, type BlobResponseHead, readBlob } from "./blob-reader.ts";

interface Listening {
  url: string;
  close(): void;
}

function listen(
  server: Server | ReturnType<typeof createNetServer>,
  scheme = "http",
): Promise<Listening> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `${scheme}://127.0.0.1:${port}`,
        close: () => {
          server.close();
          if ("closeAllConnections" in server) server.closeAllConnections();
        },
      });
    }),
  );
}

/** A server that answers every connection with these raw byte segments, each its own write. */
async function rawServer(segments: (Buffer | string)[], gapMs = 3): Promise<Listening> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    socket.once("data", async () => {
      for (const segment of segments) {
        if (socket.destroyed) return;
        socket.write(segment);
        await sleep(gapMs, undefined, { ref: false });
      }
      socket.end();
    });
  });
  const listening = await listen(server);
  return {
    url: listening.url,
    close() {
      for (const s of sockets) s.destroy();
      listening.close();
    },
  };
}

interface Collected {
  head: BlobResponseHead | undefined;
  body: Buffer;
  buffers: Set<ArrayBufferLike>;
  result: Awaited<ReturnType<typeof readBlob>>;
}

async function collect(
  req: BlobRequest,
  accept: (head: BlobResponseHead) => boolean = () => true,
): Promise<Collected> {
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let head: BlobResponseHead | undefined;
  const result = await readBlob(
    req,
    (h) => {
      head = h;
      return accept(h);
    },
    (chunk) => {
      buffers.add(chunk.buffer);
      parts.push(Buffer.from(chunk));
    },
  );
  return { head, body: Buffer.concat(parts), buffers, result };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isFerryError(err), `not a FerryError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

describe("readBlob over http", () => {
  const blob = randomBytes(8 * 1024 * 1024 + 17);
  const seen: Array<{ server: string; url: string; headers: IncomingHttpHeaders }> = [];
  let main: Listening;
  let other: Listening;

  before(async () => {
    other = await listen(
      createServer((req, res) => {
        seen.push({ server: "other", url: req.url ?? "", headers: req.headers });
        res.end("from other");
      }),
    );
    main = await listen(
      createServer(async (req, res) => {
        seen.push({ server: "main", url: req.url ?? "", headers: req.headers });
        const path = req.url ?? "";
        if (path === "/small-writes" || path === "/big-writes") {
          res.writeHead(200, { "content-length": blob.length });
          const step = path === "/small-writes" ? 1000 : 1024 * 1024;
          for (let i = 0; i < blob.length; i += step) {
            if (!res.write(blob.subarray(i, i + step))) {
              await new Promise((resolve) => res.once("drain", resolve));
            }
          }
          res.end();
        } else if (path === "/range") {
          const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
          res.writeHead(206, {
            "content-length": blob.length - start,
            "content-range": `bytes ${start}-${blob.length - 1}/${blob.length}`,
          });
          res.end(blob.subarray(start));
        } else if (path === "/cross")
          res.writeHead(307, { location: `${other.url}/b?sig=1` }).end();
        else if (path === "/same") res.writeHead(302, { location: "/target" }).end("moved");
        else if (path === "/loop") res.writeHead(302, { location: "/loop" }).end();
        else if (path === "/missing") {
          res.writeHead(404, { "content-type": "application/json" });
          res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
        } else if (path === "/huge-error") res.writeHead(500).end(Buffer.alloc(1 << 20, "x"));
        else res.end(`from main ${path}`);
      }),
    );
  });
  after(() => {
    main.close();
    other.close();
  });

  for (const path of ["/small-writes", "/big-writes"]) {
    it(`reads a Content-Length body sent in ${path.slice(1)} into one reused buffer`, async () => {
      const got = await collect({ url: `${main.url}${path}`, headers: {} });
      assert.equal(got.result.head.status, 200);
      assert.equal(got.result.bodyBytes, blob.length);
      assert.equal(sha(got.body), sha(blob));
      assert.equal(got.buffers.size, 1);
    });
  }

  it("sends Range and reads a 206", async () => {
    seen.length = 0;
    const got = await collect({ url: `${main.url}/range`, headers: {}, range: { start: 1000 } });
    assert.equal(seen[0]?.headers.range, "bytes=1000-");
    assert.equal(seen[0]?.headers["user-agent"], "ferry/0.1");
    assert.equal(got.head?.status, 206);
    assert.equal(
      got.head?.headers["content-range"],
      `bytes 1000-${blob.length - 1}/${blob.length}`,
    );
    assert.ok(got.body.equals(blob.subarray(1000)));
  });

  it("stops on a 206 that onHead declines", async () => {
    const got = await collect(
      { url: `${main.url}/range`, headers: {}, range: { start: 5 } },
      () => false,
    );
    assert.equal(got.result.bodyBytes, 0);
    assert.equal(got.result.errorBody, undefined);
  });

  it("drops Authorization and Cookie when a redirect leaves the origin", async () => {
    seen.length = 0;
    const got = await collect({
      url: `${main.url}/cross`,
      headers: { Authorization: "Bearer secret", Cookie: "c=1", "X-Other": "kept" },
    });
    assert.equal(got.body.toString(), "from other");
    assert.equal(seen[0]?.headers.authorization, "Bearer secret");
    assert.equal(seen[1]?.server, "other");
    assert.equal(seen[1]?.url, "/b?sig=1");
    assert.equal(seen[1]?.headers.authorization, undefined);
    assert.equal(seen[1]?.headers.cookie, undefined);
    assert.equal(seen[1]?.headers["x-other"], "kept");
    assert.equal(got.result.head.url, `${other.url}/b?sig=1`);
  });

  it("keeps Authorization on a same-origin redirect", async () => {
    seen.length = 0;
    const heads: number[] = [];
    const got = await collect(
      { url: `${main.url}/same`, headers: { authorization: "Bearer s" } },
      (h) => {
        heads.push(h.status);
        return true;
      },
    );
    assert.deepEqual(heads, [200]);
    assert.equal(got.body.toString(), "from main /target");
    assert.equal(seen[1]?.headers.authorization, "Bearer s");
  });

  it("gives up after maxRedirects", async () => {
    await rejectsWith(
      readBlob(
        { url: `${main.url}/loop`, headers: {}, maxRedirects: 2 },
        () => true,
        () => undefined,
      ),
      "FERRY_REGISTRY_ERROR",
    );
  });

  it("returns the error body of a declined 404 without calling onData", async () => {
    const got = await collect({ url: `${main.url}/missing`, headers: {} }, () => false);
    assert.equal(got.result.head.status, 404);
    assert.equal(got.result.errorBody, '{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    assert.equal(got.result.bodyBytes, 0);
    assert.equal(got.body.length, 0);
  });

  it("reads at most 64 KiB of an error body", async () => {
    const got = await collect({ url: `${main.url}/huge-error`, headers: {} }, () => false);
    assert.equal(got.result.errorBody?.length, 64 * 1024);
  });

  it("propagates an exception thrown by onData unchanged", async () => {
    const boom = new Error("disk full");
    await assert.rejects(
      readBlob(
        { url: `${main.url}/big-writes`, headers: {} },
        () => true,
        () => {
          throw boom;
        },
      ),
      (err) => err === boom,
    );
  });

  it("maps a refused connection to FERRY_UNREACHABLE", async () => {
    const server = await listen(createServer());
    server.close();
    await rejectsWith(
      readBlob(
        { url: `${server.url}/x`, headers: {} },
        () => true,
        () => undefined,
      ),
      "FERRY_UNREACHABLE",
    );
  });
});

const CHUNKED = [
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n",
  "5\r\nhello\r\n",
  "1;ext=1\r\n \r\n",
  "10\r\n0123456789abcdef\r\n",
  "0\r\nX-Trailer: t\r\n\r\n",
].join("");

describe("readBlob framing over raw sockets", () => {
  it("parses chunked bodies split at awkward places", async () => {
    const server = await rawServer([
      "HTTP/1.1 200 OK\r\nTransfer-",
      "Encoding: chunked\r",
      "\nX-A: 1\r\n\r\n5\r\nhe",
      "llo\r",
      "\n1",
      ";ext=1\r\n \r\n1",
      "0\r\n0123456789abcdef",
      "\r\n0\r\nX-Tra",
      "iler: t\r\n\r",
      "\n",
    ]);
    try {
      const got = await collect({ url: `${server.url}/c`, headers: {} });
      assert.equal(got.body.toString(), "hello 0123456789abcdef");
      assert.equal(got.head?.headers["x-a"], "1");
    } finally {
      server.close();
    }
  });

  it("parses a chunked response split in two at every byte", async () => {
    const bytes = Buffer.from(CHUNKED);
    for (let cut = 1; cut < bytes.length; cut++) {
      const server = await rawServer([bytes.subarray(0, cut), bytes.subarray(cut)], 2);
      try {
        const got = await collect({ url: `${server.url}/c`, headers: {} });
        assert.equal(got.body.toString(), "hello 0123456789abcdef", `cut at ${cut}`);
      } finally {
        server.close();
      }
    }
  });

  it("reads until close without framing headers, and skips an interim 100", async () => {
    const server = await rawServer([
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nab",
      "cd",
    ]);
    try {
      const got = await collect({ url: `${server.url}/`, headers: {} });
      assert.equal(got.head?.status, 200);
      assert.equal(got.body.toString(), "abcd");
    } finally {
      server.close();
    }
  });

  for (const [name, segments] of [
    ["Content-Length", ["HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", Buffer.alloc(500)]],
    ["chunked", ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"]],
    ["head", ["HTTP/1.1 200 OK\r\nContent-Le"]],
  ] as const) {
    it(`fails with FERRY_UNREACHABLE when the connection closes mid-${name}`, async () => {
      const server = await rawServer([...segments]);
      try {
        await rejectsWith(
          readBlob(
            { url: `${server.url}/`, headers: {} },
            () => true,
            () => undefined,
          ),
          "FERRY_UNREACHABLE",
        );
        if (name === "Content-Length") {
          await assert.rejects(
            readBlob(
              { url: `${server.url}/`, headers: {} },
              () => true,
              () => undefined,
            ),
            { fields: { host: new URL(server.url).host, received: 500, expected: 1000 } },
          );
        }
      } finally {
        server.close();
      }
    });
  }

  it("fails with FERRY_TIMEOUT when the body stalls", async () => {
    const server = await rawServer(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], 5_000);
    try {
      const started = Date.now();
      await rejectsWith(
        readBlob(
          { url: `${server.url}/`, headers: {}, idleTimeoutMs: 150 },
          () => true,
          () => undefined,
        ),
        "FERRY_TIMEOUT",
      );
      assert.ok(Date.now() - started < 2_000);
    } finally {
      server.close();
    }
  });

  it("keeps a slow but steady body alive past the idle timeout", async () => {
    const drips = Array.from({ length: 12 }, () => "x");
    const server = await rawServer(["HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", ...drips], 60);
    try {
      const got = await collect({ url: `${server.url}/`, headers: {}, idleTimeoutMs: 400 });
      assert.equal(got.body.toString(), "x".repeat(12));
    } finally {
      server.close();
    }
  });

  it("fails with FERRY_INTERRUPTED when aborted", async () => {
    const server = await rawServer(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], 5_000);
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      await rejectsWith(
        readBlob(
          { url: `${server.url}/`, headers: {}, signal: controller.signal },
          () => true,
          () => undefined,
        ),
        "FERRY_INTERRUPTED",
      );
    } finally {
      server.close();
    }
  });

  it("rejects a malformed chunk size", async () => {
    const server = await rawServer(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
    try {
      await rejectsWith(
        readBlob(
          { url: `${server.url}/`, headers: {} },
          () => true,
          () => undefined,
        ),
        "FERRY_REGISTRY_ERROR",
      );
    } finally {
      server.close();
    }
  });
});

describe("readBlob over https", () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-blob-tls-"));
  let server: Listening;
  let ca: Buffer;
  const blob = randomBytes(3 * 1024 * 1024);

  before(async () => {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
      ],
      { cwd: dir, stdio: "ignore" },
    );
    ca = readFileSync(join(dir, "cert.pem"));
    const https = createHttpsServer(
      { key: readFileSync(join(dir, "key.pem")), cert: ca },
      (_req, res) => {
        res.writeHead(200, { "content-length": blob.length }).end(blob);
      },
    );
    server = await listen(https as unknown as Server, "https");
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads a body when the CA is given", async () => {
    const got = await collect({ url: `${server.url}/blob`, headers: {}, tls: { ca } });
    assert.equal(sha(got.body), sha(blob));
    assert.equal(got.buffers.size, 1);
  });

  it("fails with FERRY_TLS without the CA", async () => {
    await rejectsWith(
      readBlob(
        { url: `${server.url}/blob`, headers: {} },
        () => true,
        () => undefined,
      ),
      "FERRY_TLS",
    );
  });
});
