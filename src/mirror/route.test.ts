import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DistributionError } from "./errors.ts";
import { parseRequest } from "./route.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

/** The DistributionError a request is refused with: status and code. */
function refusal(method: string, url: string): [number, string] {
  try {
    parseRequest(method, url);
  } catch (err) {
    assert.ok(err instanceof DistributionError, `${url}: ${String(err)}`);
    return [err.status, err.code];
  }
  assert.fail(`${method} ${url} was accepted`);
}

describe("parseRequest", () => {
  it("the fixed routes", () => {
    assert.deepEqual(parseRequest("GET", "/v2/"), { kind: "base" });
    assert.deepEqual(parseRequest("GET", "/v2"), { kind: "base" });
    assert.deepEqual(parseRequest("GET", "/healthz"), { kind: "health" });
    assert.deepEqual(parseRequest("GET", "/readyz"), { kind: "ready" });
    assert.deepEqual(parseRequest("GET", "/metrics"), { kind: "metrics" });
  });

  it("a manifest by tag or digest, a blob, with or without ?ns=", () => {
    assert.deepEqual(parseRequest("GET", "/v2/library/nginx/manifests/1.27"), {
      kind: "manifest",
      name: "library/nginx",
      reference: "1.27",
      namespace: undefined,
    });
    assert.deepEqual(parseRequest("HEAD", `/v2/team/app/manifests/${DIGEST}?ns=ghcr.io`), {
      kind: "manifest",
      name: "team/app",
      reference: DIGEST,
      namespace: "ghcr.io",
    });
    assert.deepEqual(parseRequest("GET", `/v2/a/b/c/blobs/${DIGEST}?ns=registry.test:5000`), {
      kind: "blob",
      name: "a/b/c",
      digest: DIGEST,
      namespace: "registry.test:5000",
    });
  });

  it("a percent-encoded digest is decoded", () => {
    const r = parseRequest("GET", `/v2/app/blobs/${DIGEST.replace(":", "%3A")}`);
    assert.equal(r.kind === "blob" && r.digest, DIGEST);
  });

  it("tags/list with its paging parameters", () => {
    assert.deepEqual(parseRequest("GET", "/v2/app/tags/list?n=10&last=v1&ns=quay.io"), {
      kind: "tags",
      name: "app",
      namespace: "quay.io",
      n: 10,
      last: "v1",
    });
    assert.deepEqual(parseRequest("GET", "/v2/app/tags/list"), {
      kind: "tags",
      name: "app",
      namespace: undefined,
      n: undefined,
      last: undefined,
    });
    assert.deepEqual(refusal("GET", "/v2/app/tags/list?n=-1"), [400, "PAGINATION_NUMBER_INVALID"]);
    assert.deepEqual(refusal("GET", "/v2/app/tags/list?n=1.5"), [400, "PAGINATION_NUMBER_INVALID"]);
    assert.deepEqual(refusal("GET", "/v2/app/tags/other"), [404, "NOT_FOUND"]);
  });

  it("uploads and other methods are writes (refused later as 405)", () => {
    assert.deepEqual(parseRequest("POST", "/v2/app/blobs/uploads/"), {
      kind: "write",
      name: "app",
    });
    assert.deepEqual(parseRequest("PATCH", "/v2/app/blobs/uploads/1234"), {
      kind: "write",
      name: "app",
    });
    assert.deepEqual(parseRequest("PUT", "/v2/app/manifests/v1"), { kind: "write", name: "app" });
    assert.deepEqual(parseRequest("DELETE", `/v2/app/blobs/${DIGEST}`), {
      kind: "write",
      name: "app",
    });
  });

  it("reads of what cannot exist are 404 with the endpoint's unknown code (OCI conformance)", () => {
    assert.deepEqual(refusal("GET", "/v2/app/blobs/latest"), [404, "BLOB_UNKNOWN"]);
    assert.deepEqual(refusal("GET", "/v2/app/manifests/-bad"), [404, "MANIFEST_UNKNOWN"]);
    assert.deepEqual(refusal("GET", `/v2/App/manifests/v1`), [404, "NAME_UNKNOWN"]);
    assert.deepEqual(refusal("HEAD", `/v2/a//b/blobs/${DIGEST}`), [404, "NAME_UNKNOWN"]);
  });

  it("a write to a name no repository can have is 400 NAME_INVALID", () => {
    assert.deepEqual(refusal("PUT", "/v2/App/manifests/v1"), [400, "NAME_INVALID"]);
    assert.deepEqual(refusal("POST", "/v2/Bad Name/blobs/uploads/"), [400, "NAME_INVALID"]);
  });

  it("anything else is 404 NOT_FOUND", () => {
    assert.deepEqual(refusal("GET", "/"), [404, "NOT_FOUND"]);
    assert.deepEqual(refusal("GET", "/v1/app/manifests/v1"), [404, "NOT_FOUND"]);
    assert.deepEqual(refusal("GET", "/v2/app"), [404, "NOT_FOUND"]);
  });
});
