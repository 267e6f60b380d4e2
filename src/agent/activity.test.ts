import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ActivityLog } from "./activity.ts";

describe("activity source", () => {
  const pulled = {
    image: "127.0.0.1:5000/team/app:1",
    target: "store" as const,
    state: "pulled" as const,
    required: true,
    bytes: 1000,
  };

  it("names the registry when it answered, and the mirror when one did", () => {
    const log = new ActivityLog();
    log.record(pulled);
    log.record({ ...pulled, via: "http://127.0.0.1:5001" });
    log.record({ ...pulled, via: "http://127.0.0.1:5001", bytesFromPeers: 400 });
    assert.deepEqual(
      log.entries().map((e) => e.source),
      ["upstream 127.0.0.1:5000", "via mirror 127.0.0.1:5001", "peers + via mirror 127.0.0.1:5001"],
    );
  });
});
