import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type LoopbackServer, listenLoopback } from "../../test/fixtures/loopback.ts";
import { isFerryError } from "../observe/index.ts";
import type { Challenge } from "./challenge.ts";
import { classifying401 } from "./refusals.ts";
import { send } from "./transport.ts";

const BEARER: Challenge = { scheme: "bearer", params: { realm: "http://127.0.0.1:1/token" } };
const BASIC: Challenge = { scheme: "basic", params: { realm: "r" } };

describe("classifying401 (what a 401 after renewal means)", () => {
  const servers: LoopbackServer[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));
  const answering = async (status: number) => {
    const r = await listenLoopback((_req, res) => res.writeHead(status).end());
    servers.push(r);
    return r;
  };
  const classify = (challenge: Challenge, hasCredentials: boolean) =>
    classifying401({
      host: "registry.test",
      repository: { domain: "registry.test", path: "team/app" },
      challenge: async () => challenge,
      hasCredentials: async () => hasCredentials,
    })(send);

  it("under Bearer, with credentials: FERRY_DENIED (valid credentials, no access to the repository)", async () => {
    const r = await answering(401);
    await assert.rejects(classify(BEARER, true)({ method: "GET", url: `${r.url}/v2/` }), (err) => {
      assert.ok(isFerryError(err, "FERRY_DENIED"), String(err));
      assert.match(err.message, /registry\.test\/team\/app/);
      assert.deepEqual(err.fields, { host: "registry.test", repository: "team/app" });
      return true;
    });
  });

  it("under Basic, with credentials: FERRY_AUTH_REJECTED with a hint to log in again", async () => {
    const r = await answering(401);
    await assert.rejects(classify(BASIC, true)({ method: "GET", url: `${r.url}/v2/` }), (err) => {
      assert.ok(isFerryError(err, "FERRY_AUTH_REJECTED"), String(err));
      assert.match(err.hint ?? "", /ferry login registry\.test/);
      return true;
    });
  });

  it("without credentials the 401 is returned, for the caller to ask for a login", async () => {
    const r = await answering(401);
    const res = await classify(BEARER, false)({ method: "GET", url: `${r.url}/v2/` });
    res.body.resume();
    assert.equal(res.status, 401);
  });

  it("any other answer passes through", async () => {
    const r = await answering(404);
    const res = await classify(BEARER, true)({ method: "GET", url: `${r.url}/v2/` });
    res.body.resume();
    assert.equal(res.status, 404);
  });
});
