import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { timeAgo } from "./relative-time.ts";

describe("timeAgo", () => {
  const now = new Date("2026-06-01T12:00:00Z");
  const before = (seconds: number) => timeAgo(new Date(now.getTime() - seconds * 1000), now);

  it("says how long ago in Docker's words", () => {
    assert.equal(before(0), "Less than a second ago");
    assert.equal(before(1), "1 second ago");
    assert.equal(before(42), "42 seconds ago");
    assert.equal(before(60), "About a minute ago");
    assert.equal(before(5 * 60), "5 minutes ago");
    assert.equal(before(3600), "About an hour ago");
    assert.equal(before(5 * 3600), "5 hours ago");
    assert.equal(before(3 * 86400), "3 days ago");
    assert.equal(before(20 * 86400), "2 weeks ago");
    assert.equal(before(90 * 86400), "3 months ago");
    assert.equal(before(3 * 365 * 86400), "3 years ago");
  });

  it("reads a clock that went back as just now", () => {
    assert.equal(before(-30), "Less than a second ago");
  });
});
