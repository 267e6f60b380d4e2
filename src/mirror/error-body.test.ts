import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fetchBlob, type ServedBlobs, serveBlobs } from "../../test/fixtures/blob-http.ts";
import { type ErrorCode, FerryError } from "../observe/index.ts";
import { DistributionError, isUpstreamFailure, toDistributionError } from "./errors.ts";

describe("Distribution error bodies", () => {
  let server: ServedBlobs;
  before(async () => {
    server = await serveBlobs(async (req, res) => {
      const error = new DistributionError(404, "BLOB_UNKNOWN", "blob unknown to registry", {
        detail: { digest: "sha256:x" },
        headers: { "x-extra": "kept" },
      });
      if (req.url?.endsWith("?started")) {
        res.writeHead(200);
        await new Promise((resolve) => res.write("started", resolve));
      }
      error.write(res, req.method ?? "GET");
    });
  });
  after(() => server.close());

  it("status, JSON body in the spec's shape, length and API version", async () => {
    const got = await fetchBlob(server.url);
    assert.equal(got.status, 404);
    assert.equal(got.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(got.headers["docker-distribution-api-version"], "registry/2.0");
    assert.equal(got.headers["x-extra"], "kept");
    assert.equal(got.headers["content-length"], String(got.body.length));
    assert.deepEqual(JSON.parse(got.body.toString()), {
      errors: [
        {
          code: "BLOB_UNKNOWN",
          message: "blob unknown to registry",
          detail: { digest: "sha256:x" },
        },
      ],
    });
  });

  it("HEAD: the same status and headers, no body", async () => {
    const got = await fetchBlob(server.url, { method: "HEAD" });
    assert.equal(got.status, 404);
    assert.equal(got.body.length, 0);
    assert.notEqual(got.headers["content-length"], "0");
  });

  it("after the response started, the connection is cut instead (no body in the middle of a blob)", async () => {
    const got = await fetchBlob(`${server.url}?started`);
    assert.equal(got.status, 200);
    assert.equal(got.complete, false);
  });
});

describe("toDistributionError", () => {
  const cases: Array<[ErrorCode, number, string, boolean]> = [
    ["FERRY_MANIFEST_UNKNOWN", 404, "MANIFEST_UNKNOWN", false],
    ["FERRY_NAME_UNKNOWN", 404, "NAME_UNKNOWN", false],
    ["FERRY_BLOB_UNKNOWN", 404, "BLOB_UNKNOWN", false],
    ["FERRY_AUTH_REQUIRED", 403, "DENIED", false],
    ["FERRY_DENIED", 403, "DENIED", false],
    ["FERRY_TOO_MANY_REQUESTS", 429, "TOOMANYREQUESTS", true],
    ["FERRY_INVALID_REFERENCE", 400, "NAME_INVALID", false],
    ["FERRY_DISK_FULL", 503, "UNAVAILABLE", false],
    ["FERRY_DIGEST_MISMATCH", 502, "UNKNOWN", false],
    ["FERRY_UNREACHABLE", 503, "UNAVAILABLE", true],
    ["FERRY_TIMEOUT", 503, "UNAVAILABLE", true],
  ];
  for (const [code, status, distribution, upstreamFailure] of cases) {
    it(`${code} → ${status} ${distribution}${upstreamFailure ? ", an upstream failure (stale allowed)" : ""}`, () => {
      const err = new FerryError(code, `upstream said ${code}`);
      const answer = toDistributionError(err);
      assert.equal(answer.status, status);
      assert.equal(answer.code, distribution);
      assert.equal(isUpstreamFailure(err), upstreamFailure);
    });
  }

  it("a DistributionError passes through; anything else is 500 without its message", () => {
    const own = new DistributionError(405, "UNSUPPORTED", "read-only");
    assert.equal(toDistributionError(own), own);
    const other = toDistributionError(new Error("secret path /var/lib/x"));
    assert.equal(other.status, 500);
    assert.equal(other.message, "internal error");
  });
});
