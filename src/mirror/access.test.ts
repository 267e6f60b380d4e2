import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { authenticate, authorize, parseAccessPolicy, underPrefix } from "./access.ts";
import { DistributionError } from "./errors.ts";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const policy = parseAccessPolicy({
  users: { ci: { passwordSha256: hex("s3cret"), repositories: ["reg.example/team/"] } },
  anonymous: ["docker.io/library"],
});
const status = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof DistributionError);
    return err.status;
  }
  return 200;
};

describe("mirror access rules", () => {
  it("matches prefixes on whole path segments", () => {
    assert.ok(underPrefix("reg.example/team/app", "reg.example/team"));
    assert.ok(underPrefix("reg.example/team", "reg.example/team/*"));
    assert.ok(!underPrefix("reg.example/teamster/app", "reg.example/team"));
    assert.ok(underPrefix("anything/at/all", "*"));
  });

  it("authenticates Basic credentials against passwordSha256", () => {
    assert.deepEqual(authenticate(policy, undefined), { kind: "anonymous" });
    assert.deepEqual(authenticate(policy, basic("ci", "s3cret")), { kind: "user", name: "ci" });
    assert.equal(
      status(() => authenticate(policy, basic("ci", "wrong"))),
      401,
    );
    assert.equal(
      status(() => authenticate(policy, basic("nobody", "s3cret"))),
      401,
    );
    assert.equal(
      status(() => authenticate(policy, "Bearer abc")),
      401,
    );
  });

  it("grants users their prefixes, anonymous clients the anonymous ones", () => {
    const ci = { kind: "user", name: "ci" } as const;
    assert.equal(authorize(policy, ci, "reg.example/team/app"), "granted");
    assert.equal(
      status(() => authorize(policy, ci, "reg.example/other")),
      403,
    );
    const anon = { kind: "anonymous" } as const;
    assert.equal(authorize(policy, anon, "docker.io/library/alpine"), "public-only");
    assert.equal(
      status(() => authorize(policy, anon, "reg.example/team/app")),
      401,
    );
  });

  it("rejects malformed auth files", () => {
    assert.throws(() => parseAccessPolicy({ users: { a: { passwordSha256: "xyz" } } }));
    assert.throws(() => parseAccessPolicy({ anonymous: "docker.io" }));
    assert.throws(() => parseAccessPolicy({ extra: 1 }));
  });
});
