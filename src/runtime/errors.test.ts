import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isStartingUp, pullFailed } from "./errors.ts";

// The runtime's own words, as containerd 1.6 wrote them (the soak's and runtime-outages' logs).
const REF = "127.0.0.1:5000/team/app:v1";
const RESOLVE = `failed to pull and unpack image "${REF}": failed to resolve reference "${REF}"`;

describe("runtime errors worded from the runtime's message", () => {
  it("a registry down, cut off or answering 5xx is the registry's transient failure", () => {
    const cases: Array<[string, string]> = [
      [
        `${RESOLVE}: failed to do request: Head "http://127.0.0.1:5000/v2/team/app/manifests/v1": dial tcp 127.0.0.1:5000: connect: connection refused`,
        "FERRY_REGISTRY_UNAVAILABLE",
      ],
      [
        `${RESOLVE}: pulling from host 127.0.0.1:34223 failed with status code [manifests v1]: 503 Service Unavailable`,
        "FERRY_REGISTRY_UNAVAILABLE",
      ],
      [
        `${RESOLVE}: pulling from host 127.0.0.1:5000 failed with status code [manifests v1]: 429 Too Many Requests`,
        "FERRY_TOO_MANY_REQUESTS",
      ],
      [`${RESOLVE}: 127.0.0.1:5000/team/app:v1: not found`, "FERRY_RUNTIME_PULL_FAILED"],
    ];
    for (const [message, code] of cases) {
      const err = pullFailed("containerd", REF, message);
      assert.equal(err.code, code, message);
      assert.match(err.message, /^containerd could not pull /);
      assert.equal(err.fields.runtimeMessage, message);
      assert.ok(err.hint);
    }
  });

  it("containerd still loading its state after a restart is told apart", () => {
    assert.equal(isStartingUp("server is not initialized yet"), true);
    assert.equal(isStartingUp("failed to get image: not found"), false);
  });
});
