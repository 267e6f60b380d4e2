import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { REDACTED, redactSecrets } from "./redact.ts";

describe("redactSecrets", () => {
  it("replaces secret-named fields at any depth and keeps the rest", () => {
    const doc = {
      node: "n1",
      webhooks: { enabled: true, secret: "s3cr3t", allow: ["team/app"] },
      registries: [{ host: "r.example", password: "hunter2", token: "abc", username: "u" }],
      headers: { Authorization: "Bearer abcdefghijkl" },
      credentialHelper: "ecr-login",
    };
    assert.deepEqual(redactSecrets(doc), {
      node: "n1",
      webhooks: { enabled: true, secret: REDACTED, allow: ["team/app"] },
      registries: [{ host: "r.example", password: REDACTED, token: REDACTED, username: "u" }],
      headers: { Authorization: REDACTED },
      credentialHelper: REDACTED,
    });
  });

  it("keeps booleans that only say whether a secret is set", () => {
    assert.deepEqual(redactSecrets({ secretSet: true, token: null }), {
      secretSet: true,
      token: null,
    });
  });

  it("masks credentials inside strings: URL userinfo and Authorization values", () => {
    const error =
      "GET https://bob:pa55word@registry.example/v2/ failed (Bearer eyJhbGciOiJIUzI1NiJ9.x)";
    const out = redactSecrets({ lastError: { message: error } }) as {
      lastError: { message: string };
    };
    assert.equal(
      out.lastError.message,
      `GET https://${REDACTED}@registry.example/v2/ failed (Bearer ${REDACTED})`,
    );
    assert.doesNotMatch(JSON.stringify(out), /pa55word|eyJhbGci/);
  });

  it("leaves ordinary status untouched", () => {
    const doc = {
      images: [{ image: "127.0.0.1:5000/team/app:1", targets: { store: { state: "pulled" } } }],
    };
    assert.deepEqual(redactSecrets(doc), doc);
  });
});
