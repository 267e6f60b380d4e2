import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type LoopbackServer, listenLoopback } from "../../test/fixtures/loopback.ts";
import { isFerryError } from "../observe/index.ts";
import { authorizing } from "./authorize.ts";
import type { Challenge } from "./challenge.ts";
import { renewingOn401 } from "./renew.ts";
import { compose } from "./send.ts";
import { send } from "./transport.ts";

const CONTEXT = { host: "registry", repository: "app", what: "manifest" as const };

describe("renewingOn401 (the renewal policy)", () => {
  const servers: LoopbackServer[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));
  /** A registry that accepts only `Bearer <valid>`, and answers anything else with `refusal`. */
  const registry = async (valid: string, refusal: Record<string, string>) => {
    const r = await listenLoopback((req, res) => {
      if (req.headers.authorization === `Bearer ${valid}`) res.end("the manifest");
      else res.writeHead(401, refusal).end('{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}');
    });
    servers.push(r);
    return r;
  };

  /** Renewal over the auth policy, as the client stacks them; a renewal issues the next token. */
  const stack = (r: LoopbackServer) => {
    const learnt: Challenge[] = [];
    let token = 1;
    const send2 = compose(
      renewingOn401({ ...CONTEXT, host: r.url }, (challenge) => {
        learnt.push(challenge);
        token++;
      }),
      authorizing({
        origin: r.url,
        known: () => true,
        challenge: async () => learnt.at(-1) ?? { scheme: "bearer", params: {} },
        authorization: async () => `Bearer t${token}`,
      }),
    )(send);
    return { send: send2, learnt };
  };
  const challenge = { "www-authenticate": 'Bearer realm="http://127.0.0.1:1/token",scope="x"' };

  it("learns the challenge of a 401 and sends the request once more with fresh credentials", async () => {
    const r = await registry("t2", challenge);
    const { send: renewing, learnt } = stack(r);
    const res = await renewing({ method: "GET", url: `${r.url}/v2/app/manifests/1` });
    res.body.resume();
    assert.equal(res.status, 200);
    assert.deepEqual(
      r.seen.map((s) => s.headers.authorization),
      ["Bearer t1", "Bearer t2"],
    );
    assert.deepEqual(learnt, [
      { scheme: "bearer", params: { realm: "http://127.0.0.1:1/token", scope: "x" } },
    ]);
  });

  it("renews once: a second 401 is returned as it is", async () => {
    const r = await registry("never", challenge);
    const { send: renewing, learnt } = stack(r);
    const res = await renewing({ method: "GET", url: `${r.url}/v2/app/manifests/1` });
    res.body.resume();
    assert.equal(res.status, 401);
    assert.equal(r.seen.length, 2);
    assert.equal(learnt.length, 1);
  });

  it("a 401 without a challenge is the registry's error, worded for what was asked", async () => {
    const r = await registry("t2", {});
    const { send: renewing, learnt } = stack(r);
    await assert.rejects(renewing({ method: "GET", url: `${r.url}/v2/app/manifests/1` }), (err) => {
      assert.ok(isFerryError(err), String(err));
      assert.match(err.message, /app/);
      return true;
    });
    assert.equal(r.seen.length, 1);
    assert.equal(learnt.length, 0);
  });
});
