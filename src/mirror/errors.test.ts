import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError } from "../observe/index.ts";
import { isUpstreamFailure, toDistributionError } from "./errors.ts";

describe("toDistributionError", () => {
  it("an upstream at a refused address is 403 DENIED, saying why, and never served stale", () => {
    const err = new FerryError(
      "FERRY_ADDRESS_REFUSED",
      "refusing to connect to metadata.test (169.254.169.254): the address is link-local",
    );
    const answer = toDistributionError(err);
    assert.equal(answer.status, 403);
    assert.equal(answer.code, "DENIED");
    assert.deepEqual(answer.detail, { upstream: err.message });
    assert.equal(isUpstreamFailure(err), false);
  });
});
