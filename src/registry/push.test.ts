import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CHUNK_SIZE, planChunks, pushScope, resolveLocation, withDigestParam } from "./push.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("planChunks", () => {
  it("cuts a blob into CHUNK_SIZE ranges, the last one short", () => {
    const size = 2 * CHUNK_SIZE + 5;
    assert.deepEqual(planChunks(size), [
      { start: 0, end: CHUNK_SIZE },
      { start: CHUNK_SIZE, end: 2 * CHUNK_SIZE },
      { start: 2 * CHUNK_SIZE, end: size },
    ]);
  });

  it("gives exact multiples no empty tail, and nothing for an empty blob", () => {
    assert.deepEqual(planChunks(20, 10), [
      { start: 0, end: 10 },
      { start: 10, end: 20 },
    ]);
    assert.deepEqual(planChunks(0, 10), []);
  });

  it("covers every byte once, in order", () => {
    for (const size of [1, 9, 10, 11, 99, 100, 101]) {
      const chunks = planChunks(size, 10);
      assert.equal(chunks[0]?.start, 0);
      assert.equal(chunks.at(-1)?.end, size);
      for (let i = 1; i < chunks.length; i++) assert.equal(chunks[i]?.start, chunks[i - 1]?.end);
    }
  });
});

describe("resolveLocation", () => {
  const base = "http://127.0.0.1:5000";

  it("resolves a relative Location against the registry, keeping its query", () => {
    assert.equal(
      resolveLocation(base, "/v2/a/b/blobs/uploads/uuid-1?_state=abc%3D%3D&x=1"),
      "http://127.0.0.1:5000/v2/a/b/blobs/uploads/uuid-1?_state=abc%3D%3D&x=1",
    );
  });

  it("keeps an absolute Location as it is, even on another host", () => {
    const elsewhere = "https://uploads.example.net/session/9?sig=Zz%2B1";
    assert.equal(resolveLocation(base, elsewhere), elsewhere);
    assert.equal(
      resolveLocation(base, "http://127.0.0.1:5000/v2/x/blobs/uploads/u?_state=s"),
      "http://127.0.0.1:5000/v2/x/blobs/uploads/u?_state=s",
    );
  });
});

describe("withDigestParam", () => {
  it("appends digest= to the session's query without re-encoding it", () => {
    assert.equal(
      withDigestParam("http://h/v2/x/blobs/uploads/u?_state=a%2Bb%3D", DIGEST),
      `http://h/v2/x/blobs/uploads/u?_state=a%2Bb%3D&digest=sha256%3A${"ab".repeat(32)}`,
    );
  });

  it("starts a query when there is none, and drops a fragment", () => {
    assert.equal(
      withDigestParam("http://h/v2/x/blobs/uploads/u", DIGEST),
      `http://h/v2/x/blobs/uploads/u?digest=sha256%3A${"ab".repeat(32)}`,
    );
    assert.equal(
      withDigestParam("http://h/u?#frag", DIGEST),
      `http://h/u?digest=sha256%3A${"ab".repeat(32)}`,
    );
  });
});

describe("pushScope", () => {
  it("asks for push and pull, plus pull on the repository a mount reads from", () => {
    const repo = { domain: "registry.test", path: "team/app" };
    assert.equal(pushScope(repo), "repository:team/app:push,pull");
    assert.equal(
      pushScope(repo, "team/base"),
      "repository:team/app:push,pull repository:team/base:pull",
    );
  });
});
