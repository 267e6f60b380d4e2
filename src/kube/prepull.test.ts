import assert from "node:assert/strict";
import { test } from "node:test";
import { decideHeadroom } from "./headroom.ts";
import { nodeStatus, readyCount, sameNodeStatus } from "./prepull.ts";
import { credentialsFromSecret } from "./pull-secrets.ts";
import { matchesNodeSelector } from "./selector.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

test("ready N/M counts nodes holding every image, with this node's new entry in place", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const done = nodeStatus([{ image: "a", state: "present" }], now);
  const partial = nodeStatus(
    [
      { image: "a", state: "present" },
      { image: "b", state: "failed", reason: "x" },
    ],
    now,
  );
  assert.equal(partial.present, 1);
  assert.equal(partial.total, 2);
  assert.equal(readyCount({ "n-1": done, "n-2": partial }, "n-2", done), "2/2");
  assert.equal(readyCount({ "n-1": done }, "n-2", partial), "1/2");
  assert.equal(readyCount({ "n-1": done, "n-2": done }, "n-2", undefined), "1/1");
  assert.equal(
    readyCount(undefined, "n-1", nodeStatus([], now)),
    "0/1",
    "an empty list is not ready",
  );
  assert.ok(sameNodeStatus(done, nodeStatus([{ image: "a", state: "present" }], new Date())));
  assert.ok(!sameNodeStatus(done, partial));
});

test("nodeSelector: every key equal; none selects every node", () => {
  assert.ok(matchesNodeSelector(undefined, {}));
  assert.ok(matchesNodeSelector({ pool: "gpu" }, { pool: "gpu", zone: "a" }));
  assert.ok(!matchesNodeSelector({ pool: "gpu", zone: "b" }, { pool: "gpu", zone: "a" }));
  assert.ok(!matchesNodeSelector({ pool: "gpu" }, {}));
});

test("pull secrets: dockerconfigjson and dockercfg, by registry host", () => {
  const json = credentialsFromSecret({
    type: "kubernetes.io/dockerconfigjson",
    data: {
      ".dockerconfigjson": b64(
        JSON.stringify({
          auths: {
            "https://index.docker.io/v1/": { auth: b64("hub:pw") },
            "registry.example:5000": { username: "u", password: "p" },
            "token.example": { identitytoken: "tok" },
            "broken.example": { auth: b64("nocolon") },
          },
        }),
      ),
    },
  });
  assert.deepEqual(json.get("docker.io"), { username: "hub", password: "pw" });
  assert.deepEqual(json.get("registry.example:5000"), { username: "u", password: "p" });
  assert.deepEqual(json.get("token.example"), { identityToken: "tok" });
  assert.equal(json.get("broken.example"), undefined);
  const legacy = credentialsFromSecret({
    data: { ".dockercfg": b64(JSON.stringify({ "quay.io": { auth: b64("q:r") } })) },
  });
  assert.deepEqual(legacy.get("quay.io"), { username: "q", password: "r" });
  assert.equal(
    credentialsFromSecret({ data: { token: b64("x") } }).size,
    0,
    "other secrets give nothing",
  );
  assert.equal(credentialsFromSecret({ data: { ".dockerconfigjson": b64("{not json") } }).size, 0);
});

test("headroom: refused when usage after the warm passes the threshold", () => {
  const usage = { totalBytes: 100, usedBytes: 80 };
  assert.equal(decideHeadroom(usage, 5, 85).ok, true);
  const over = decideHeadroom(usage, 6, 85);
  assert.equal(over.ok, false);
  assert.equal(over.afterPercent, 86);
  assert.equal(
    decideHeadroom({ totalBytes: 100, usedBytes: 90 }, 0, 85).ok,
    false,
    "already above",
  );
});
