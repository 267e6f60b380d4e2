import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseChallenges } from "./challenge.ts";

describe("parseChallenges", () => {
  it("parses a Docker Hub bearer challenge", () => {
    const [c] = parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull"',
    );
    assert.deepEqual(c, {
      scheme: "bearer",
      params: {
        realm: "https://auth.example/token",
        service: "registry.example",
        scope: "repository:library/busybox:pull",
      },
    });
  });
  it("keeps commas inside quoted values and splits several challenges", () => {
    const cs = parseChallenges(
      'Basic realm="Registry Realm", Bearer realm="http://t/token",scope="repository:a:pull,push",service=svc',
    );
    assert.equal(cs.length, 2);
    assert.equal(cs[0]?.scheme, "basic");
    assert.equal(cs[0]?.params.realm, "Registry Realm");
    assert.equal(cs[1]?.params.scope, "repository:a:pull,push");
    assert.equal(cs[1]?.params.service, "svc");
  });
  it("handles escaped quotes and case-insensitive names", () => {
    const [c] = parseChallenges('BEARER Realm="a\\"b"');
    assert.equal(c?.scheme, "bearer");
    assert.equal(c?.params.realm, 'a"b');
  });
  it("returns nothing for an empty header", () => {
    assert.deepEqual(parseChallenges(""), []);
  });
});
