import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { retryFrom } from "./agent-retry.ts";

describe("ferry agent's retry flags", () => {
  it("INITIAL,MAX (or INITIAL alone) over agent.yaml's retry:", () => {
    const file = { required: { initialMs: 2_000, maxMs: 60_000 }, webhookAttempts: 4 };
    assert.deepEqual(retryFrom({ "retry-optional": "1m" }, file), {
      required: { initialMs: 2_000, maxMs: 60_000 },
      optional: { initialMs: 60_000, maxMs: 600_000 },
      webhookAttempts: 4,
    });
    assert.deepEqual(
      retryFrom({ "retry-required": "10s,1h", "retry-webhook-attempts": "20" }, file),
      {
        required: { initialMs: 10_000, maxMs: 3_600_000 },
        optional: undefined,
        webhookAttempts: 20,
      },
    );
  });

  it("a bad value is a usage error naming the flag", () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ "retry-required": "5s,5m,1h" }, /--retry-required takes INITIAL,MAX/],
      [{ "retry-required": ",5m" }, /--retry-required takes INITIAL,MAX/],
      [{ "retry-required": "5,5m" }, /--retry-required "5" is not a duration/],
      [{ "retry-optional": "10m,1m" }, /--retry-optional: the cap \(60s\) is shorter/],
      [{ "retry-webhook-attempts": "0" }, /--retry-webhook-attempts must be a whole number/],
    ];
    for (const [flags, message] of cases)
      assert.throws(
        () => retryFrom(flags, undefined),
        (e: Error & { code?: string; hint?: string }) => {
          assert.equal(e.code, "FERRY_INVALID_ARGUMENT");
          assert.match(e.message, message);
          assert.ok(e.hint);
          return true;
        },
      );
  });
});
