import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type LoopbackServer, listenLoopback } from "../../test/fixtures/loopback.ts";
import { isFerryError } from "../observe/index.ts";
import { Authenticator } from "./auth.ts";
import { type EndpointAuth, authorizing } from "./authorize.ts";
import { type Challenge, pickChallenge } from "./challenge.ts";
import { header, send } from "./transport.ts";

const BASIC = `Basic ${Buffer.from("alice:secret").toString("base64")}`;
const alice = { get: async () => ({ username: "alice", password: "secret" }) };

/**
 * A registry whose /v2/ (the ping) answers only once the anonymous GET of a manifest has
 * arrived: a client that waited for the ping before that GET would never get an answer.
 */
async function registry(wantsAuth: boolean): Promise<LoopbackServer> {
  let manifestAsked: () => void = () => {};
  const asked = new Promise<void>((resolve) => {
    manifestAsked = resolve;
  });
  return listenLoopback((req, res) => {
    const authorized = req.headers.authorization === BASIC;
    if (req.url === "/v2/") {
      const answer = () =>
        wantsAuth
          ? res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end()
          : res.end("{}");
      if (req.headers.authorization === undefined) void asked.then(answer);
      else answer();
      return;
    }
    manifestAsked();
    if (wantsAuth && !authorized) res.writeHead(404).end("hidden from anonymous clients");
    else res.end("the manifest");
  });
}

/**
 * The endpoint's auth as the client gives it: a real ping, remembered (`learnt` seeds it, as
 * a 401 would), and a real Authenticator.
 */
function endpointAuth(r: LoopbackServer, learnt?: Challenge): EndpointAuth & { pings: number } {
  const auth = new Authenticator({ credentials: alice, send: (req) => send(req) });
  let known: Promise<Challenge | undefined> | undefined =
    learnt === undefined ? undefined : Promise.resolve(learnt);
  const ping = async () => {
    state.pings++;
    const res = await send({ method: "GET", url: `${r.url}/v2/` });
    res.body.resume();
    return res.status === 401 ? pickChallenge(header(res, "www-authenticate")) : undefined;
  };
  const state = {
    pings: 0,
    origin: r.url,
    known: () => known !== undefined,
    challenge: () => {
      known ??= ping();
      return known;
    },
    authorization: (c: Challenge | undefined) => auth.header("registry", c, "repository:app:pull"),
  };
  return state;
}

async function text(res: { body: AsyncIterable<unknown> }): Promise<string> {
  let out = "";
  for await (const chunk of res.body) out += String(chunk);
  return out;
}

describe("authorizing (the auth policy)", () => {
  const servers: LoopbackServer[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));
  const start = async (wantsAuth: boolean) => {
    const r = await registry(wantsAuth);
    servers.push(r);
    return r;
  };
  const manifest = (r: LoopbackServer) => ({
    method: "GET" as const,
    url: `${r.url}/v2/app/manifests/1`,
  });

  it("sends the first GET anonymous alongside the ping, and uses its answer when no credentials are wanted", async () => {
    const r = await start(false);
    const res = await authorizing(endpointAuth(r))(send)(manifest(r));
    assert.equal(await text(res), "the manifest");
    const gets = r.seen.filter((s) => s.path !== "/v2/");
    assert.equal(gets.length, 1);
    assert.equal(gets[0]?.headers.authorization, undefined);
  });

  it("throws the anonymous answer away once the ping asks for credentials, and asks again with them", async () => {
    const r = await start(true);
    const res = await authorizing(endpointAuth(r))(send)(manifest(r));
    assert.equal(res.status, 200);
    assert.equal(await text(res), "the manifest");
    const gets = r.seen.filter((s) => s.path !== "/v2/").map((s) => s.headers.authorization);
    assert.deepEqual(gets, [undefined, BASIC]);
  });

  it("with the challenge known, sends one request, with credentials", async () => {
    const r = await start(true);
    const learnt = { scheme: "basic", params: { realm: "test" } };
    await authorizing(endpointAuth(r, learnt))(send)(manifest(r)).then((res) => res.body.resume());
    assert.deepEqual(
      r.seen.map((s) => [s.path, s.headers.authorization]),
      [["/v2/app/manifests/1", BASIC]],
    );
  });

  it("never sends a write anonymous: a PUT waits for the ping", async () => {
    const r = await listenLoopback((req, res) => {
      if (req.url === "/v2/") res.writeHead(401, { "www-authenticate": 'Basic realm="t"' }).end();
      else res.writeHead(201).end();
    });
    servers.push(r);
    const res = await authorizing(endpointAuth(r))(send)({
      method: "PUT",
      url: `${r.url}/v2/app/manifests/1`,
      body: "{}",
    });
    res.body.resume();
    assert.deepEqual(
      r.seen.map((s) => [s.method, s.path, s.headers.authorization]),
      [
        ["GET", "/v2/", undefined],
        ["PUT", "/v2/app/manifests/1", BASIC],
      ],
    );
  });

  it("sends a request for another origin as it is: no credentials, no ping", async () => {
    const r = await start(true);
    const storage = await listenLoopback((_req, res) => res.end("bytes"));
    servers.push(storage);
    const auth = endpointAuth(r);
    const res = await authorizing(auth)(send)({ method: "GET", url: `${storage.url}/upload/1` });
    assert.equal(await text(res), "bytes");
    assert.equal(storage.seen[0]?.headers.authorization, undefined);
    assert.equal(auth.pings, 0);
  });

  it("fails with the ping's error when the ping fails", async () => {
    const r = await start(false);
    const failing: EndpointAuth = {
      ...endpointAuth(r),
      challenge: () => send({ method: "GET", url: "ftp://127.0.0.1/v2/" }).then(() => undefined),
    };
    await assert.rejects(authorizing(failing)(send)(manifest(r)), (err) =>
      isFerryError(err, "FERRY_INVALID_ARGUMENT"),
    );
  });
});
