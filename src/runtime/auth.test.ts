// How a credential reaches each runtime: Docker's X-Registry-Auth header, the CRI's AuthConfig.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseReference } from "../reference/index.ts";
import { authConfig } from "./cri-messages.ts";
import { dockerName, registryAuthHeader } from "./docker.ts";

function decode(header: string): unknown {
  assert.match(header, /^[A-Za-z0-9_-]+=*$/, "base64url, padded");
  return JSON.parse(Buffer.from(header, "base64url").toString("utf8"));
}

describe("registryAuthHeader (Docker)", () => {
  it("encodes username/password with Docker's config key as serveraddress", () => {
    const hub = parseReference("busybox");
    const header = registryAuthHeader(hub, { username: "u", password: "p?>>" });
    assert.deepEqual(decode(header), {
      username: "u",
      password: "p?>>",
      serveraddress: "https://index.docker.io/v1/",
    });
    assert.equal(header.length % 4, 0, "padded as Go's base64.URLEncoding wants");
    const local = parseReference("127.0.0.1:5000/a/b:1");
    assert.deepEqual(decode(registryAuthHeader(local, { identityToken: "tok" })), {
      identitytoken: "tok",
      serveraddress: "127.0.0.1:5000",
    });
  });
});

describe("dockerName", () => {
  it("is familiar for Docker Hub, and by digest alone when pinned", () => {
    const digest = "sha256:" + "a".repeat(64);
    assert.equal(dockerName(parseReference("docker.io/library/busybox")), "busybox:latest");
    assert.equal(dockerName(parseReference("user/app:2")), "user/app:2");
    assert.equal(dockerName(parseReference(`busybox:1@${digest}`)), `busybox@${digest}`);
    assert.equal(dockerName(parseReference("quay.io/x/y:3")), "quay.io/x/y:3");
  });
});

describe("authConfig (CRI)", () => {
  it("names the host the runtime calls, so mirrors never get the credential", () => {
    assert.deepEqual(authConfig(parseReference("busybox"), { username: "u", password: "p" }), {
      username: "u",
      password: "p",
      server_address: "https://registry-1.docker.io",
    });
    assert.deepEqual(
      authConfig(parseReference("127.0.0.1:5000/a:1"), { identityToken: "t", username: "u" }),
      { identity_token: "t", server_address: "http://127.0.0.1:5000" },
    );
  });
});
