import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { Endpoint, HostSettings } from "./endpoint.ts";
import { EndpointChoice, type MirrorFailure } from "./endpoint-choice.ts";

// The order endpoints are asked in, as pure logic: `op` stands for a request to one endpoint.

const REGISTRY = "127.0.0.1:5000";
const MIRROR_A = "http://127.0.0.1:5001";
const MIRROR_B = "http://127.0.0.1:5002";
const settings = (host: string): HostSettings | undefined =>
  host === REGISTRY ? { plainHttp: true, mirrors: [MIRROR_A, MIRROR_B] } : { plainHttp: true };

function choice(): { choice: EndpointChoice; failures: MirrorFailure[] } {
  const failures: MirrorFailure[] = [];
  return { choice: new EndpointChoice(settings, (f) => failures.push(f)), failures };
}

const unreachable = (what: string) => new FerryError("FERRY_UNREACHABLE", `${what} is down`);

describe("EndpointChoice", () => {
  it("asks the mirrors in order, then the registry; a registry without mirrors is asked alone", () => {
    const { choice: c } = choice();
    assert.deepEqual(
      c.endpoints(REGISTRY).map((e) => [e.base, e.mirror]),
      [
        [MIRROR_A, true],
        [MIRROR_B, true],
        ["http://127.0.0.1:5000", false],
      ],
    );
    assert.deepEqual(
      c.endpoints("127.0.0.1:6000").map((e) => e.base),
      ["http://127.0.0.1:6000"],
    );
  });

  it("a failing mirror is skipped from then on and reported once; the answerer is asked first next time", async () => {
    const { choice: c, failures } = choice();
    const asked: string[] = [];
    const op = async (e: Endpoint) => {
      asked.push(e.base);
      if (e.base === MIRROR_A) throw unreachable(e.base);
      return e.base;
    };
    assert.equal(await c.firstAnswer(REGISTRY, undefined, op), MIRROR_B);
    assert.deepEqual(asked, [MIRROR_A, MIRROR_B]);
    assert.deepEqual(failures, [
      { mirror: MIRROR_A, registry: REGISTRY, reason: `${MIRROR_A} is down` },
    ]);
    assert.equal(c.answeredFrom(REGISTRY), MIRROR_B);
    assert.equal(c.current(REGISTRY).base, MIRROR_B);
    asked.length = 0;
    assert.equal(await c.firstAnswer(REGISTRY, undefined, op), MIRROR_B);
    assert.deepEqual(asked, [MIRROR_B]);
    c.mirrorFailed(REGISTRY, MIRROR_A, "again");
    assert.equal(failures.length, 1, "a mirror already given up on is not reported twice");
  });

  it("the registry's own failure stands; a preferred mirror that fails is forgotten", async () => {
    const { choice: c } = choice();
    await c.firstAnswer(REGISTRY, undefined, async (e) => e.base);
    assert.equal(c.answeredFrom(REGISTRY), MIRROR_A);
    await assert.rejects(
      c.firstAnswer(REGISTRY, undefined, async (e) => {
        throw unreachable(e.base);
      }),
      (err) => isFerryError(err, "FERRY_UNREACHABLE") && /5000/.test(err.message),
    );
    assert.equal(c.answeredFrom(REGISTRY), undefined);
    assert.deepEqual(
      c.endpoints(REGISTRY).map((e) => e.base),
      ["http://127.0.0.1:5000"],
    );
  });

  it("an interrupted request is not a mirror failure", async () => {
    const { choice: c, failures } = choice();
    await assert.rejects(
      c.firstAnswer(REGISTRY, undefined, async () => {
        throw new FerryError("FERRY_INTERRUPTED", "interrupted");
      }),
      (err) => isFerryError(err, "FERRY_INTERRUPTED"),
    );
    assert.deepEqual(failures, []);
    assert.equal(c.endpoints(REGISTRY).length, 3);
  });
});
