import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { criEndpoint, dockerEndpoint } from "./endpoint.ts";

describe("dockerEndpoint", () => {
  it("takes the option, else DOCKER_HOST, else /var/run/docker.sock", () => {
    const env = { DOCKER_HOST: "unix:///env/docker.sock" };
    assert.deepEqual(dockerEndpoint("unix:///opt/d.sock", env), {
      kind: "unix",
      socketPath: "/opt/d.sock",
      text: "unix:///opt/d.sock",
    });
    assert.equal(dockerEndpoint(undefined, env).text, "unix:///env/docker.sock");
    assert.equal(
      dockerEndpoint(undefined, { DOCKER_HOST: " " }).text,
      "unix:///var/run/docker.sock",
    );
    assert.equal(dockerEndpoint(undefined, {}).text, "unix:///var/run/docker.sock");
    assert.equal(dockerEndpoint("/bare/path.sock", {}).text, "unix:///bare/path.sock");
  });

  it("reads tcp://host[:port], with Docker's plain-HTTP port by default", () => {
    assert.deepEqual(dockerEndpoint("tcp://10.0.0.5:2375", {}), {
      kind: "tcp",
      host: "10.0.0.5",
      port: 2375,
      text: "tcp://10.0.0.5:2375",
    });
    assert.equal(dockerEndpoint("tcp://docker", {}).text, "tcp://docker:2375");
    const v6 = dockerEndpoint("tcp://[::1]:2376", {});
    assert.ok(v6.kind === "tcp" && v6.host === "::1" && v6.text === "tcp://[::1]:2376");
  });

  it("refuses what it cannot speak: ssh, npipe, TLS", () => {
    for (const host of ["ssh://me@box", "npipe:////./pipe/docker_engine", "unix://relative"]) {
      assert.throws(
        () => dockerEndpoint(host, {}),
        (err) => isFerryError(err, "FERRY_INVALID_ARGUMENT"),
      );
    }
    const tls = { DOCKER_HOST: "tcp://box:2376", DOCKER_TLS_VERIFY: "1" };
    assert.throws(() => dockerEndpoint(undefined, tls), /TLS/);
  });
});

describe("criEndpoint", () => {
  it("takes the option, else CONTAINER_RUNTIME_ENDPOINT, else containerd's socket", () => {
    const env = { CONTAINER_RUNTIME_ENDPOINT: "unix:///run/crio/crio.sock" };
    assert.deepEqual(criEndpoint("unix:///x/c.sock", env), {
      text: "unix:///x/c.sock",
      grpcTarget: "unix:///x/c.sock",
    });
    assert.equal(criEndpoint(undefined, env).text, "unix:///run/crio/crio.sock");
    assert.equal(criEndpoint(undefined, {}).text, "unix:///run/containerd/containerd.sock");
    assert.equal(criEndpoint("/bare.sock", {}).grpcTarget, "unix:///bare.sock");
    assert.deepEqual(criEndpoint("tcp://127.0.0.1:1234", {}), {
      text: "tcp://127.0.0.1:1234",
      grpcTarget: "127.0.0.1:1234",
    });
    assert.throws(
      () => criEndpoint("npipe:////./pipe/containerd", {}),
      /CONTAINER_RUNTIME_ENDPOINT|endpoint/,
    );
  });
});
