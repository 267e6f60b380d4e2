import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError } from "../observe/index.ts";
import {
  familiarName,
  formatReference,
  parseReference,
  type Reference,
  repositoryName,
  requirePullable,
  withDigest,
  withTag,
} from "./index.ts";

const SHA256 = "sha256:" + "ab".repeat(32);
const SHA512 = "sha512:" + "cd".repeat(64);

describe("formatReference / familiarName / repositoryName", () => {
  const CASES: ReadonlyArray<[input: string, full: string, familiar: string, repository: string]> =
    [
      ["postgres:16", "docker.io/library/postgres:16", "postgres:16", "docker.io/library/postgres"],
      [
        "postgres",
        "docker.io/library/postgres:latest",
        "postgres:latest",
        "docker.io/library/postgres",
      ],
      ["user/app", "docker.io/user/app:latest", "user/app:latest", "docker.io/user/app"],
      [
        "library/a/b",
        "docker.io/library/a/b:latest",
        "library/a/b:latest",
        "docker.io/library/a/b",
      ],
      ["index.docker.io/user/app:2", "docker.io/user/app:2", "user/app:2", "docker.io/user/app"],
      [
        `app@${SHA256}`,
        `docker.io/library/app@${SHA256}`,
        `app@${SHA256}`,
        "docker.io/library/app",
      ],
      [
        `localhost:5000/a/b@${SHA256}`,
        `localhost:5000/a/b@${SHA256}`,
        `localhost:5000/a/b@${SHA256}`,
        "localhost:5000/a/b",
      ],
      [
        `host.io/x:tag@${SHA256}`,
        `host.io/x:tag@${SHA256}`,
        `host.io/x:tag@${SHA256}`,
        "host.io/x",
      ],
      ["[::1]:5000/app:dev", "[::1]:5000/app:dev", "[::1]:5000/app:dev", "[::1]:5000/app"],
      [
        "ghcr.io/library/x",
        "ghcr.io/library/x:latest",
        "ghcr.io/library/x:latest",
        "ghcr.io/library/x",
      ],
    ];
  for (const [input, full, familiar, repository] of CASES) {
    it(`${JSON.stringify(input)} → ${full} | ${familiar}`, () => {
      const ref = parseReference(input);
      assert.equal(formatReference(ref), full);
      assert.equal(familiarName(ref), familiar);
      assert.equal(repositoryName(ref), repository);
      assert.deepEqual(parseReference(familiar), ref, "the familiar name means the same image");
    });
  }
});

describe("withTag / withDigest", () => {
  const base = parseReference("ghcr.io/o/app:1");

  it("replaces the tag and keeps the digest", () => {
    const pinned = withDigest(base, SHA256);
    assert.deepEqual(
      { ...withTag(pinned, "2") },
      {
        domain: "ghcr.io",
        path: "o/app",
        tag: "2",
        digest: SHA256,
      },
    );
    assert.equal(base.tag, "1", "the original is untouched");
  });

  it("adds a digest and keeps the tag", () => {
    assert.equal(formatReference(withDigest(base, SHA512)), `ghcr.io/o/app:1@${SHA512}`);
  });

  it("rejects an invalid tag, naming it", () => {
    assert.throws(
      () => withTag(base, "-bad"),
      (err: unknown) =>
        err instanceof FerryError &&
        err.code === "FERRY_INVALID_REFERENCE" &&
        err.message.includes('invalid tag "-bad"') &&
        err.message.includes("ghcr.io/o/app:-bad"),
    );
  });

  it("rejects an unsupported or malformed digest", () => {
    for (const [digest, reason] of [
      [`md5:${"a".repeat(32)}`, 'unsupported digest algorithm "md5": only sha256 is supported'],
      ["sha256:abc", "expected 64 hex characters, got 3"],
      ["nonsense", "expected <algorithm>:<hex>"],
    ] as const) {
      assert.throws(
        () => withDigest(base, digest),
        (err: unknown) =>
          err instanceof FerryError &&
          err.code === "FERRY_INVALID_REFERENCE" &&
          err.message.includes(reason),
        digest,
      );
    }
  });
});

describe("requirePullable", () => {
  it("passes references pinned by sha256 or not pinned", () => {
    const tagged = parseReference("app:1");
    const pinned = parseReference(`app@${SHA256}`);
    assert.equal(requirePullable(tagged), tagged);
    assert.equal(requirePullable(pinned), pinned);
  });

  it("refuses a sha512 pin with FERRY_UNSUPPORTED_DIGEST naming the algorithm", () => {
    const ref: Reference = parseReference(`app@${SHA512}`);
    assert.throws(
      () => requirePullable(ref),
      (err: unknown) =>
        err instanceof FerryError &&
        err.code === "FERRY_UNSUPPORTED_DIGEST" &&
        err.message.includes("sha512") &&
        err.message.includes("only sha256 is supported") &&
        err.fields["algorithm"] === "sha512",
    );
  });
});
