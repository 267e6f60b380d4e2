import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type LoopbackServer, listenLoopback } from "../../test/fixtures/loopback.ts";
import { isFerryError } from "../observe/index.ts";
import { Deadline } from "./deadline.ts";
import { type RetryPolicy, retrying } from "./retry.ts";
import { send } from "./transport.ts";

/** Waits of a millisecond: what is tested is when to send again, not how long to wait. */
const QUICK: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 60_000 };

describe("retrying (the retry policy)", () => {
  const servers: LoopbackServer[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));
  const registry = async (statuses: number[], headers: Record<string, string> = {}) => {
    const server = await listenLoopback((_req, res) => {
      res.writeHead(statuses.shift() ?? 200, headers).end("answer");
    });
    servers.push(server);
    return server;
  };

  it("sends again after 503s until an answer that is not retryable; each try is an attempt of the deadline", async () => {
    const r = await registry([503, 503, 200]);
    const deadline = new Deadline(QUICK);
    const res = await retrying(deadline, undefined)(send)({ method: "GET", url: `${r.url}/v2/` });
    res.body.resume();
    assert.equal(res.status, 200);
    assert.equal(r.seen.length, 3);
    assert.equal(deadline.attempts, 3);
  });

  it("returns the last retryable answer once the deadline's attempts without progress are spent", async () => {
    const r = await registry([503, 503, 503, 200]);
    const deadline = new Deadline({ ...QUICK, maxAttempts: 2 });
    const res = await retrying(deadline, undefined)(send)({ method: "GET", url: `${r.url}/v2/` });
    res.body.resume();
    assert.equal(res.status, 503);
    assert.equal(r.seen.length, 2);
  });

  it("starts no attempt that would begin past the progress deadline (a Retry-After beyond it)", async () => {
    const r = await registry([429, 200], { "retry-after": "5" });
    const clock = 1_000_000;
    const deadline = new Deadline(
      { ...QUICK, maxDelayMs: 10_000, maxElapsedMs: 3_000 },
      () => clock,
    );
    const res = await retrying(deadline, undefined)(send)({ method: "GET", url: `${r.url}/v2/` });
    res.body.resume();
    assert.equal(res.status, 429);
    assert.equal(r.seen.length, 1);
  });

  it("throws the last transient network error once the deadline is spent", async () => {
    const closed = await registry([]);
    await closed.close(); // its port now refuses connections
    const deadline = new Deadline({ ...QUICK, maxAttempts: 3 });
    await assert.rejects(
      retrying(deadline, undefined)(send)({ method: "GET", url: `${closed.url}/v2/` }),
      (err) => isFerryError(err, "FERRY_UNREACHABLE"),
    );
    assert.equal(deadline.attempts, 3);
  });

  it("does not send again after a final error", async () => {
    const deadline = new Deadline(QUICK);
    await assert.rejects(
      retrying(deadline, undefined)(send)({ method: "GET", url: "ftp://127.0.0.1/v2/" }),
      (err) => isFerryError(err, "FERRY_INVALID_ARGUMENT"),
    );
    assert.equal(deadline.attempts, 1);
  });

  it("stops waiting when the signal aborts", async () => {
    const r = await registry([503, 503, 503]);
    const controller = new AbortController();
    const deadline = new Deadline({ ...QUICK, baseDelayMs: 60_000, maxDelayMs: 60_000 });
    const pending = retrying(deadline, controller.signal)(send)({
      method: "GET",
      url: `${r.url}/v2/`,
    });
    controller.abort();
    await assert.rejects(pending, (err) => isFerryError(err, "FERRY_INTERRUPTED"));
  });
});
