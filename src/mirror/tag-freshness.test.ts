import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STALE_RETRY_MS, type TagState, tagAnswer } from "./tag-freshness.ts";

const NOW = 1_000_000;
const TTL = 60_000;
const tag = (state: Partial<TagState>): TagState => ({
  stored: true,
  validatedAt: undefined,
  failedAt: undefined,
  now: NOW,
  tagTtlMs: TTL,
  ...state,
});

describe("tagAnswer", () => {
  it("a tag the store does not record is asked upstream, whatever else is known", () => {
    assert.equal(tagAnswer(tag({ stored: false })), "revalidate");
    assert.equal(tagAnswer(tag({ stored: false, validatedAt: NOW, failedAt: NOW })), "revalidate");
  });

  it("validated within the TTL: fresh from the store; at the TTL or after: revalidate", () => {
    assert.equal(tagAnswer(tag({ validatedAt: NOW - TTL + 1 })), "fresh");
    assert.equal(tagAnswer(tag({ validatedAt: NOW - TTL })), "revalidate");
    assert.equal(tagAnswer(tag({ validatedAt: undefined })), "revalidate", "never validated here");
  });

  it("the upstream failed just now: stale at once, even within the TTL; later it is asked again", () => {
    assert.equal(tagAnswer(tag({ failedAt: NOW - 1 })), "stale");
    assert.equal(tagAnswer(tag({ failedAt: NOW - 1, validatedAt: NOW - 1 })), "stale");
    assert.equal(tagAnswer(tag({ failedAt: NOW - STALE_RETRY_MS })), "revalidate");
    assert.equal(tagAnswer(tag({ failedAt: NOW - STALE_RETRY_MS, validatedAt: NOW - 1 })), "fresh");
  });

  it("a TTL of 0 revalidates every time", () => {
    assert.equal(tagAnswer(tag({ tagTtlMs: 0, validatedAt: NOW })), "revalidate");
  });
});
