import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { credentialsFromSecret } from "./secrets.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("pull secrets", () => {
  it("reads dockerconfigjson auths by host", () => {
    const config = {
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hub:pw") },
        "127.0.0.1:5000": { username: "u", password: "p:x" },
        "http://reg.example/v2/": { identitytoken: "tok" },
        broken: { auth: b64("nocolon") },
      },
    };
    const found = credentialsFromSecret({
      data: { ".dockerconfigjson": b64(JSON.stringify(config)) },
    });
    assert.deepEqual(found.get("docker.io"), { username: "hub", password: "pw" });
    assert.deepEqual(found.get("127.0.0.1:5000"), { username: "u", password: "p:x" });
    assert.deepEqual(found.get("reg.example"), { identityToken: "tok" });
    assert.equal(found.has("broken"), false);
  });

  it("reads the legacy dockercfg format and ignores garbage", () => {
    const legacy = { "reg:1": { auth: b64("a:b") } };
    assert.deepEqual(
      credentialsFromSecret({ data: { ".dockercfg": b64(JSON.stringify(legacy)) } }).get("reg:1"),
      { username: "a", password: "b" },
    );
    assert.equal(credentialsFromSecret({ data: { ".dockerconfigjson": b64("{nope") } }).size, 0);
    assert.equal(credentialsFromSecret({}).size, 0);
  });
});
