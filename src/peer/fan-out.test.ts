import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classify, parseErrorBody } from "../registry/index.ts";
import { askerOf, FanOut, mayRelay, relaysBody, relaysOf } from "./fan-out.ts";

const D = `sha256:${"a".repeat(64)}`;
const E = `sha256:${"b".repeat(64)}`;

describe("FanOut", () => {
  it("serves up to its limit per blob, then points askers at the peers it serves", () => {
    const fan = new FanOut(2);
    const a = fan.admit(D, "10.0.0.1:5001", 0, undefined);
    const b = fan.admit(D, "10.0.0.2:5001", 0, undefined);
    assert.equal(a.kind, "serve");
    assert.equal(b.kind, "serve");
    // Another blob has its own share.
    assert.equal(fan.admit(E, "10.0.0.3:5001", 0, undefined).kind, "serve");
    const c = fan.admit(D, "10.0.0.3:5001", 0, undefined);
    assert.deepEqual(c, {
      kind: "redirect",
      relays: [
        { peer: "10.0.0.1:5001", depth: 1 },
        { peer: "10.0.0.2:5001", depth: 1 },
      ],
    });
    // The next redirect starts at the next relay, spreading askers over them.
    const d = fan.admit(D, "10.0.0.4:5001", 0, undefined);
    assert.equal(d.kind === "redirect" && d.relays[0]?.peer, "10.0.0.2:5001");
    assert.deepEqual(fan.receivers(D), ["10.0.0.1:5001", "10.0.0.2:5001"]);
    if (a.kind === "serve") a.release();
    assert.equal(fan.admit(D, "10.0.0.3:5001", 0, undefined).kind, "serve");
  });

  it("serves beyond its limit when no relay could take the asker", () => {
    const fan = new FanOut(1);
    // A member without a listener cannot relay: it is no one to point at.
    fan.admit(D, undefined, 0, undefined);
    assert.equal(fan.admit(D, "10.0.0.2:5001", 0, undefined).kind, "serve");
    // The only relay is the asker itself.
    const solo = new FanOut(1);
    solo.admit(D, "10.0.0.2:5001", 0, undefined);
    assert.equal(solo.admit(D, "10.0.0.2:5001", 0, undefined).kind, "serve");
  });

  it("never points a relaying asker at nodes as deep as it or deeper", () => {
    const fan = new FanOut(1);
    fan.admit(D, "10.0.0.1:5001", 1, undefined);
    // This node is at depth 1, its receivers at 2: an asker relaying at depth 2 cannot use them.
    assert.equal(fan.admit(D, "10.0.0.5:5001", 1, 2).kind, "serve");
    assert.equal(fan.admit(D, "10.0.0.6:5001", 1, 3).kind, "redirect");
    assert.equal(mayRelay(1, 2), true);
    assert.equal(mayRelay(2, 2), false);
    assert.equal(mayRelay(3, undefined), true);
  });

  it("sends a small blob to every asker at once: a hop would cost more than the bytes", () => {
    const fan = new FanOut(1);
    fan.admit(D, "10.0.0.1:5001", 0, undefined, 600);
    assert.equal(fan.admit(D, "10.0.0.2:5001", 0, undefined, 600).kind, "serve");
    assert.equal(fan.admit(D, "10.0.0.3:5001", 0, undefined, 8 << 20).kind, "redirect");
  });

  it("a release is counted once", () => {
    const fan = new FanOut(2);
    const a = fan.admit(D, "10.0.0.1:5001", 0, undefined);
    fan.admit(D, "10.0.0.2:5001", 0, undefined);
    if (a.kind === "serve") {
      a.release();
      a.release();
    }
    assert.equal(fan.downstream(D), 1);
  });
});

describe("redirect bodies", () => {
  it("come back out of the pull engine's error for the 409", () => {
    const body = relaysBody([
      { peer: "10.0.0.1:5001", depth: 1 },
      { peer: "[fd00::2]:5001", depth: 1 },
    ]);
    const err = classify(409, parseErrorBody(body), {
      host: "10.0.0.9:5001",
      repository: "app",
      digest: D,
      what: "blob",
    });
    assert.deepEqual(relaysOf(err), [
      { peer: "10.0.0.1:5001", depth: 1 },
      { peer: "[fd00::2]:5001", depth: 1 },
    ]);
  });

  it("are not read from other errors", () => {
    const other = classify(
      409,
      parseErrorBody('{"errors":[{"code":"X","message":"relays a:1@1"}]}'),
      {
        host: "h",
        repository: "app",
        digest: D,
        what: "blob",
      },
    );
    assert.deepEqual(relaysOf(other), []);
    assert.deepEqual(relaysOf(new Error("relays a:1@1")), []);
  });

  it("an asker's address is taken only when it is one", () => {
    assert.equal(askerOf("10.0.0.1:5001"), "10.0.0.1:5001");
    assert.equal(askerOf("0.0.0.0:5001"), undefined);
    assert.equal(askerOf("nonsense"), undefined);
    assert.equal(askerOf(undefined), undefined);
  });
});
