import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type LoopbackServer, listenLoopback } from "../../test/fixtures/loopback.ts";
import { readBlob } from "./blob-reader.ts";
import { readText, send } from "./transport.ts";

describe("the redirect policy (redirect.ts), as send and readBlob use it", () => {
  let registry: LoopbackServer;
  let storage: LoopbackServer;
  before(async () => {
    storage = await listenLoopback((_req, res) => res.end("from storage"));
    registry = await listenLoopback((req, res) => {
      const to = (status: number, location: string) => res.writeHead(status, { location }).end();
      if (req.url === "/see-other") to(303, "/answer");
      else if (req.url === "/multiple") to(300, "/answer");
      else if (req.url === "/not-modified") to(304, "/answer");
      else if (req.url === "/empty") to(302, "");
      else if (req.url === "/storage") to(307, `${storage.url}/blob`);
      else res.end(`${req.method} ${req.url}`);
    });
  });
  after(() => Promise.all([registry.close(), storage.close()]));

  it("turns a 303 into a GET without the body", async () => {
    const res = await send({ method: "POST", url: `${registry.url}/see-other`, body: "form" });
    assert.equal(await readText(res), "GET /answer");
    assert.equal(res.url, `${registry.url}/answer`);
    assert.deepEqual(
      registry.seen.filter((s) => s.path === "/answer").map((s) => s.headers["content-length"]),
      [undefined],
    );
  });

  it("returns 300, 304 and a redirect without a Location as answers, not redirects", async () => {
    for (const path of ["/multiple", "/not-modified", "/empty"]) {
      const res = await send({ method: "GET", url: `${registry.url}${path}` });
      res.body.resume();
      assert.equal(res.url, `${registry.url}${path}`, path);
    }
  });

  it("drops Authorization and Cookie across origins whatever case the caller wrote them in", async () => {
    const headers = { Authorization: "Bearer secret", COOKIE: "session=1", Accept: "x/y" };
    const res = await send({ method: "GET", url: `${registry.url}/storage`, headers });
    assert.equal(await readText(res), "from storage");
    const result = await readBlob(
      { url: `${registry.url}/storage`, headers },
      () => true,
      () => {},
    );
    assert.equal(result.head.url, `${storage.url}/blob`);
    for (const seen of storage.seen) {
      assert.equal(seen.headers.authorization, undefined);
      assert.equal(seen.headers.cookie, undefined);
      assert.equal(seen.headers.accept, "x/y");
    }
    assert.equal(storage.seen.length, 2);
  });
});
