import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { createAgents, readBytes, readText, send } from "./transport.ts";

/** Two real HTTP servers on loopback: different ports are different origins. */
function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

describe("send", () => {
  const seen: Array<{ server: string; path: string; headers: IncomingHttpHeaders }> = [];
  let a: { server: Server; url: string };
  let b: { server: Server; url: string };
  const agents = createAgents();

  before(async () => {
    b = await listen((req, res) => {
      seen.push({ server: "b", path: req.url ?? "", headers: req.headers });
      res.end("from b");
    });
    a = await listen((req, res) => {
      seen.push({ server: "a", path: req.url ?? "", headers: req.headers });
      if (req.url === "/cross") res.writeHead(307, { location: `${b.url}/blob?sig=1` }).end();
      else if (req.url === "/same") res.writeHead(302, { location: "/target" }).end();
      else if (req.url === "/loop") res.writeHead(302, { location: "/loop" }).end();
      else res.end(`from a ${req.url}`);
    });
  });
  after(() => {
    agents.destroy();
    a.server.close();
    b.server.close();
  });

  it("drops Authorization when a redirect leaves the origin", async () => {
    seen.length = 0;
    const res = await send(
      { method: "GET", url: `${a.url}/cross`, headers: { Authorization: "Bearer secret" } },
      { agents },
    );
    assert.equal(await readText(res), "from b");
    assert.equal(seen[0]?.headers.authorization, "Bearer secret");
    assert.equal(seen[1]?.server, "b");
    assert.equal(seen[1]?.headers.authorization, undefined);
    assert.equal(res.url, `${b.url}/blob?sig=1`);
  });

  it("keeps Authorization on a same-origin redirect", async () => {
    seen.length = 0;
    const res = await send(
      { method: "GET", url: `${a.url}/same`, headers: { authorization: "Bearer secret" } },
      { agents },
    );
    assert.equal(await readText(res), "from a /target");
    assert.equal(seen[1]?.headers.authorization, "Bearer secret");
  });

  it("gives up on redirect loops", async () => {
    await assert.rejects(
      send({ method: "GET", url: `${a.url}/loop` }, { agents, maxRedirects: 3 }),
      (e) =>
        isFerryError(e, "FERRY_REGISTRY_ERROR") &&
        e.message ===
          `${new URL(a.url).host} redirected ${a.url}/loop more than 3 times (a redirect loop)` &&
        /operator/.test(e.hint ?? ""),
    );
  });

  it("refuses a redirect to anything but http(s), naming the scheme and not the target", async () => {
    const to = await listen((_req, res) => {
      res.writeHead(302, { location: "file:///etc/passwd" }).end();
    });
    try {
      await assert.rejects(
        send({ method: "GET", url: `${to.url}/v2/` }, { agents }),
        (e) =>
          isFerryError(e, "FERRY_REGISTRY_ERROR") &&
          e.message ===
            `${new URL(to.url).host} redirected ${to.url}/v2/ to a file: URL; only http and https redirects are followed` &&
          e.hint !== undefined,
      );
    } finally {
      await new Promise((r) => to.server.close(r));
    }
  });

  it("maps a refused connection to FERRY_UNREACHABLE naming the host", async () => {
    const closed = await listen((_req, res) => res.end());
    const url = closed.url;
    await new Promise((r) => closed.server.close(r));
    await assert.rejects(
      send({ method: "GET", url: `${url}/v2/` }, { agents }),
      (e) =>
        isFerryError(e, "FERRY_UNREACHABLE") &&
        e.message.includes("connection refused") &&
        e.message.includes(new URL(url).host),
    );
  });

  it("times out a server that stops sending", async () => {
    const stall = await listen(() => {
      /* never answers */
    });
    try {
      await assert.rejects(
        send({ method: "GET", url: `${stall.url}/` }, { agents, idleTimeoutMs: 200 }),
        (e) => isFerryError(e, "FERRY_TIMEOUT"),
      );
    } finally {
      stall.server.closeAllConnections();
      stall.server.close();
    }
  });

  describe("plain HTTP (one connection per request, no node:http)", () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 7, "x");
    let c: { server: Server; url: string };
    const bodies: string[] = [];
    before(async () => {
      c = await listen((req, res) => {
        if (req.url === "/head") {
          res.writeHead(200, { "content-length": "1234", "docker-content-digest": "sha256:x" });
          res.end();
        } else if (req.url === "/post") {
          let text = "";
          req.on("data", (d) => {
            text += d;
          });
          req.on("end", () => {
            bodies.push(`${req.headers["content-length"]} ${text}`);
            res.end("ok");
          });
        } else if (req.url === "/chunked") {
          res.write("one,");
          setTimeout(() => res.end("two"), 20);
        } else if (req.url === "/big") {
          res.end(big);
        } else if (req.url === "/short") {
          res.writeHead(200, { "content-length": "100" });
          res.write("only ten b");
          setTimeout(() => res.socket?.destroy(), 20);
        } else if (req.url === "/cut-401") {
          res.writeHead(401, { "content-length": "100" });
          res.write("ten bytes.");
          setTimeout(() => res.socket?.destroy(), 20);
        } else if (req.url === "/bad-chunk") {
          // A head and a malformed chunk size in one packet.
          req.socket.end("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n");
        } else if (req.url === "/twice") {
          res.setHeader("content-type", ["application/a", "application/b"]);
          res.setHeader("x-list", ["one", "two"]);
          res.end();
        } else if (req.url === "/slow") {
          res.writeHead(200, { "content-length": "100" });
          res.write("some");
        } else res.writeHead(404).end();
      });
    });
    after(() => {
      c.server.closeAllConnections();
      c.server.close();
    });

    it("answers HEAD with the head only, even when it announces a length", async () => {
      const res = await send({ method: "HEAD", url: `${c.url}/head` }, { agents });
      assert.equal(res.status, 200);
      assert.equal(res.headers["docker-content-digest"], "sha256:x");
      assert.equal(await readText(res), "");
    });

    it("sends a request body with its length", async () => {
      const res = await send(
        { method: "POST", url: `${c.url}/post`, body: "grant_type=x&scope=y" },
        { agents },
      );
      assert.equal(await readText(res), "ok");
      assert.deepEqual(bodies, ["20 grant_type=x&scope=y"]);
    });

    it("reads chunked and large bodies whole", async () => {
      assert.equal(
        await readText(await send({ method: "GET", url: `${c.url}/chunked` })),
        "one,two",
      );
      const res = await send({ method: "GET", url: `${c.url}/big` }, { agents });
      assert.ok((await readBytes(res, 8 * 1024 * 1024)).equals(big));
      assert.equal((await send({ method: "GET", url: `${c.url}/nope` }, { agents })).status, 404);
    });

    it("fails a body cut short by the server as FERRY_UNREACHABLE", async () => {
      const res = await send({ method: "GET", url: `${c.url}/short` }, { agents });
      await assert.rejects(readText(res), (e) => isFerryError(e, "FERRY_UNREACHABLE"));
    });

    it("a body drained unread that breaks fails it without an unhandled error", async () => {
      const res = await send({ method: "GET", url: `${c.url}/cut-401` }, { agents });
      assert.equal(res.status, 401);
      res.body.resume(); // as the ping and a discarded answer do
      await new Promise((r) => res.body.once("close", r));
      assert.ok(isFerryError(res.body.errored, "FERRY_UNREACHABLE"));
    });

    it("a malformed body arriving with the head fails the read, not the process", async () => {
      const res = await send({ method: "GET", url: `${c.url}/bad-chunk` }, { agents });
      await new Promise((r) => setImmediate(r));
      await assert.rejects(readText(res), (e) => isFerryError(e, "FERRY_REGISTRY_ERROR"));
    });

    it("keeps the first of a repeated single-valued header, joins list headers", async () => {
      const res = await send({ method: "GET", url: `${c.url}/twice` }, { agents });
      await readText(res);
      assert.equal(res.headers["content-type"], "application/a");
      assert.equal(res.headers["x-list"], "one, two");
    });

    it("stops a body when the signal aborts", async () => {
      const abort = new AbortController();
      const res = await send(
        { method: "GET", url: `${c.url}/slow`, signal: abort.signal },
        { agents },
      );
      setTimeout(() => abort.abort(), 20);
      await assert.rejects(readText(res), (e) => isFerryError(e, "FERRY_INTERRUPTED"));
    });
  });
});
