import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Endpoint, endpointUrl } from "./endpoint.ts";
import { API_ROOT, blobPath, manifestPath, tagListPath, uploadPath } from "./paths.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("the Distribution API's paths", () => {
  it("spells each path under /v2/ with the repository's own slashes", () => {
    assert.equal(API_ROOT, "/v2/");
    assert.equal(blobPath("library/nginx", DIGEST), `/v2/library/nginx/blobs/${DIGEST}`);
    assert.equal(uploadPath("team/app"), "/v2/team/app/blobs/uploads/");
    assert.equal(manifestPath("library/nginx", "1.27"), "/v2/library/nginx/manifests/1.27");
    assert.equal(tagListPath("a/b/c"), "/v2/a/b/c/tags/list");
  });

  it("puts a path on an endpoint, with ?ns= only for a mirror's", () => {
    const plain: Endpoint = {
      base: "http://127.0.0.1:5000",
      host: "127.0.0.1:5000",
      mirror: false,
      namespace: undefined,
      tls: undefined,
    };
    const viaMirror: Endpoint = {
      base: "http://127.0.0.1:5001/cache",
      host: "127.0.0.1:5001",
      mirror: true,
      namespace: "127.0.0.1:5000",
      tls: undefined,
    };
    assert.equal(endpointUrl(plain, API_ROOT), "http://127.0.0.1:5000/v2/");
    assert.equal(
      endpointUrl(plain, tagListPath("app"), new URLSearchParams({ n: "10" })),
      "http://127.0.0.1:5000/v2/app/tags/list?n=10",
    );
    assert.equal(
      endpointUrl(viaMirror, blobPath("app", DIGEST)),
      `http://127.0.0.1:5001/cache/v2/app/blobs/${DIGEST}?ns=127.0.0.1%3A5000`,
    );
  });
});
