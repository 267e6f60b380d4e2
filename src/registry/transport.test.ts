import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { createAgents, readText, send } from "./transport.ts";

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
      (e) => isFerryError(e, "FERRY_REGISTRY_ERROR") && /too many redirects/.test(e.message),
    );
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
});
