import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  apiHost,
  DEFAULT_DOMAIN,
  DOCKER_HUB_API_HOST,
  isDockerHub,
  isLoopbackHost,
  parseReference,
} from "./index.ts";

describe("apiHost", () => {
  for (const [domain, host] of [
    ["docker.io", "registry-1.docker.io"],
    ["index.docker.io", "registry-1.docker.io"],
    ["ghcr.io", "ghcr.io"],
    ["localhost:5000", "localhost:5000"],
    ["[::1]:5000", "[::1]:5000"],
  ] as const) {
    it(`${domain} → ${host}`, () => assert.equal(apiHost(domain), host));
  }

  it("sends a normalized Docker Hub reference to the API host", () => {
    assert.equal(apiHost(parseReference("postgres").domain), DOCKER_HUB_API_HOST);
    assert.equal(DEFAULT_DOMAIN, "docker.io");
  });
});

describe("isDockerHub", () => {
  for (const [domain, expected] of [
    ["docker.io", true],
    ["index.docker.io", true],
    ["registry-1.docker.io", true],
    ["https://index.docker.io/v1/", true],
    ["https://registry-1.docker.io", true],
    ["Docker.IO", true],
    ["ghcr.io", false],
    ["docker.io.evil.example", false],
    ["mydocker.io", false],
    ["localhost:5000", false],
    ["", false],
  ] as const) {
    it(`${JSON.stringify(domain)} → ${expected}`, () =>
      assert.equal(isDockerHub(domain), expected));
  }
});

describe("isLoopbackHost", () => {
  for (const [host, expected] of [
    ["localhost", true],
    ["localhost:5000", true],
    ["LOCALHOST:5000", true],
    ["127.0.0.1", true],
    ["127.0.0.1:5000", true],
    ["127.255.3.4:80", true],
    ["::1", true],
    ["[::1]", true],
    ["[::1]:5000", true],
    ["0:0:0:0:0:0:0:1", true],
    ["[0000::0001]:1", true],
    ["::ffff:127.0.0.1", true],
    ["localhost.example.com", false],
    ["mylocalhost", false],
    ["128.0.0.1", false],
    ["127.0.0.256", false],
    ["127.0.0", false],
    ["10.0.0.1:5000", false],
    ["::2", false],
    ["[::1]x", false],
    ["[::1", false],
    ["::", false],
    ["1::1::1", false],
    ["localhost:abc", false],
    ["ghcr.io", false],
    ["", false],
  ] as const) {
    it(`${JSON.stringify(host)} → ${expected}`, () => assert.equal(isLoopbackHost(host), expected));
  }
});
