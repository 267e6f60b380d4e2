import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError } from "../observe/index.ts";
import { isUnqualified, parseReference, parseRepository } from "./index.ts";

const SHA256 = "sha256:" + "0123456789abcdef".repeat(4);
const SHA512 = "sha512:" + "0123456789abcdef".repeat(8);

type Expected = [domain: string, path: string, tag: string | undefined, digest?: string];

const VALID: ReadonlyArray<[input: string, expected: Expected]> = [
  ["postgres", ["docker.io", "library/postgres", "latest"]],
  ["postgres:16", ["docker.io", "library/postgres", "16"]],
  ["user/app", ["docker.io", "user/app", "latest"]],
  ["docker.io/postgres", ["docker.io", "library/postgres", "latest"]],
  ["docker.io/library/postgres:16", ["docker.io", "library/postgres", "16"]],
  ["index.docker.io/user/app:1", ["docker.io", "user/app", "1"]],
  ["index.docker.io/busybox", ["docker.io", "library/busybox", "latest"]],
  ["registry.example.com/team/app:1.0", ["registry.example.com", "team/app", "1.0"]],
  ["registry.example.com:5000/team/app", ["registry.example.com:5000", "team/app", "latest"]],
  ["localhost/app", ["localhost", "app", "latest"]],
  ["localhost:5000/a/b", ["localhost:5000", "a/b", "latest"]],
  [`localhost:5000/a/b@${SHA256}`, ["localhost:5000", "a/b", undefined, SHA256]],
  ["127.0.0.1:5000/app:v2", ["127.0.0.1:5000", "app", "v2"]],
  ["192.168.1.10/x", ["192.168.1.10", "x", "latest"]],
  ["[::1]:5000/app:dev", ["[::1]:5000", "app", "dev"]],
  ["[2001:db8::1]/ns/app", ["[2001:db8::1]", "ns/app", "latest"]],
  ["ghcr.io/a/b/c/d/e:tag", ["ghcr.io", "a/b/c/d/e", "tag"]],
  ["quay.io/a.b/c_d/e__f/g-h/i---j", ["quay.io", "a.b/c_d/e__f/g-h/i---j", "latest"]],
  ["my-registry.example/x", ["my-registry.example", "x", "latest"]],
  ["xn--bcher-kva.example/app", ["xn--bcher-kva.example", "app", "latest"]],
  [`app:1.2@${SHA256}`, ["docker.io", "library/app", "1.2", SHA256]],
  [`ghcr.io/o/app:tag@${SHA256}`, ["ghcr.io", "o/app", "tag", SHA256]],
  [`app@${SHA512}`, ["docker.io", "library/app", undefined, SHA512]],
  ["app:_x", ["docker.io", "library/app", "_x"]],
  ["app:LATEST", ["docker.io", "library/app", "LATEST"]],
  ["app:v1.2.3-rc.1_b", ["docker.io", "library/app", "v1.2.3-rc.1_b"]],
  [`app:${"t".repeat(128)}`, ["docker.io", "library/app", "t".repeat(128)]],
  ["0/1", ["docker.io", "0/1", "latest"]],
  // Docker's rules: an uppercase first element is a host; bare "localhost" is a repository.
  ["Registry/app", ["Registry", "app", "latest"]],
  ["localhost", ["docker.io", "library/localhost", "latest"]],
  ["localhost:5000", ["docker.io", "library/localhost", "5000"]],
];

const INVALID: ReadonlyArray<[input: string, reason: string]> = [
  ["", "reference is empty"],
  ["Postgres", "repository name must be lowercase"],
  ["docker.io/User/app", "repository name must be lowercase"],
  ["user/App:1", "repository name must be lowercase"],
  ["app:bad tag", 'invalid tag "bad tag": invalid character " "'],
  ["app:-x", 'invalid tag "-x": must start with a letter, digit or "_"'],
  ["app:.x", 'invalid tag ".x"'],
  ["app:", 'invalid tag "": a tag cannot be empty'],
  [`app:${"t".repeat(129)}`, "longer than 128 characters"],
  ["app:a:b", 'invalid tag "a:b": invalid character ":"'],
  [`example.com/${"a".repeat(244)}`, "name is longer than 255 characters (256"],
  ["a//b", "empty path component"],
  ["/app", "empty path component"],
  ["user/app/", "empty path component"],
  ["ghcr.io/a//b", "empty path component"],
  ["localhost:5000/", "repository name is empty"],
  [":", "repository name is empty"],
  [":tag", "repository name is empty"],
  ["-app", 'path component "-app" must start and end with a lowercase letter or digit'],
  ["app-", "must start and end with a lowercase letter or digit"],
  ["_app", "must start and end with a lowercase letter or digit"],
  [".app", "must start and end with a lowercase letter or digit"],
  ["a..b", 'invalid separator ".." in path component "a..b"'],
  ["a___b", 'invalid separator "___"'],
  ["a...b", 'invalid separator "..."'],
  ["a._b", 'invalid separator "._"'],
  ["a-.b", 'invalid separator "-."'],
  ["a b", 'invalid character " " in path component "a b"'],
  ["café", 'invalid character "é"'],
  ["host:port/x", 'invalid port "port"'],
  ["localhost:/x", 'invalid port ""'],
  ["localhost:50a0/x", 'invalid port "50a0"'],
  ["[::1]:x/y", 'invalid port "x"'],
  ["exa_mple.com/x", 'invalid domain component "exa_mple"'],
  ["-bad.com/x", 'invalid domain component "-bad"'],
  ["bad-.com/x", 'invalid domain component "bad-"'],
  ["a..com/x", 'empty domain component in "a..com"'],
  [".com/x", "empty domain component"],
  ["::1/x", 'IPv6 address "::1" must be in brackets'],
  ["[::1/x", "invalid IPv6 address"],
  ["[zz::1]:5000/x", 'invalid IPv6 address "[zz::1]:5000"'],
  ["[::1]x/y", 'invalid registry host "[::1]x"'],
  [`app@${SHA256.slice(0, -1)}`, "invalid sha256 digest: expected 64 hex characters, got 63"],
  [`app@${SHA256}0`, "expected 64 hex characters, got 65"],
  ["app@sha256:abc", "expected 64 hex characters, got 3"],
  [`app@sha512:${"a".repeat(64)}`, "invalid sha512 digest: expected 128 hex characters, got 64"],
  [`app@sha256:${"A".repeat(64)}`, "invalid sha256 digest: hex must be lowercase"],
  [`app@sha256:${"g".repeat(64)}`, 'invalid sha256 digest: "g" is not a hex digit'],
  [`app@md5:${"a".repeat(32)}`, 'unsupported digest algorithm "md5": only sha256 is supported'],
  [
    `app@sha384:${"a".repeat(96)}`,
    'unsupported digest algorithm "sha384": only sha256 is supported',
  ],
  [`app@SHA256:${"a".repeat(64)}`, 'digest algorithm "SHA256" must be lowercase'],
  ["app@sha256", "expected <algorithm>:<hex>"],
  ["app:1@", "expected <algorithm>:<hex>"],
  [`app@1sha:${"a".repeat(64)}`, 'malformed algorithm "1sha"'],
  [`app@${SHA256}@${SHA256}`, "is not a hex digit"],
  ["0123456789abcdef".repeat(4), "a 64-character hexadecimal string is an image ID"],
];

function assertRejects(input: string, reason: string): void {
  assert.throws(
    () => parseReference(input),
    (err: unknown) => {
      assert.ok(err instanceof FerryError, `expected FerryError, got ${String(err)}`);
      assert.equal(err.code, "FERRY_INVALID_REFERENCE");
      assert.ok(err.message.startsWith("invalid reference "), err.message);
      if (input.length <= 80) assert.ok(err.message.includes(JSON.stringify(input)), err.message);
      assert.ok(err.message.includes(reason), `${JSON.stringify(err.message)} lacks ${reason}`);
      assert.ok((err.hint ?? "").length > 10, "a hint says what to do");
      assert.equal(err.fields["input"], input);
      return true;
    },
  );
}

describe("parseReference", () => {
  for (const [input, [domain, path, tag, digest]] of VALID) {
    it(`parses ${JSON.stringify(input)}`, () => {
      assert.deepEqual({ ...parseReference(input) }, { domain, path, tag, digest });
    });
  }

  for (const [input, reason] of INVALID) {
    it(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 37)}...` : input)}: ${reason}`, () => {
      assertRejects(input, reason);
    });
  }

  it("accepts a normalized name of exactly 255 characters and rejects 256", () => {
    const host = "example.com";
    const fits = `${host}/${"a".repeat(255 - host.length - 1)}`;
    assert.equal(fits.length, 255);
    assert.equal(parseReference(fits).path.length, 243);
    assertRejects(`${fits}b`, "name is longer than 255 characters (256");
  });

  it("measures the length after normalization (docker.io/library/ is added)", () => {
    const path = "a".repeat(240);
    assert.ok(path.length < 255, "the text as typed fits");
    assertRejects(path, "name is longer than 255 characters (258 once normalized)");
  });

  it("returns a frozen value", () => {
    const ref = parseReference("postgres:16");
    assert.ok(Object.isFrozen(ref));
  });

  it("rejects a non-string with FERRY_INVALID_REFERENCE", () => {
    assert.throws(
      () => parseReference(42 as unknown as string),
      (err: unknown) => err instanceof FerryError && err.code === "FERRY_INVALID_REFERENCE",
    );
  });

  it("cuts a huge input short in the message but keeps it whole in fields", () => {
    const input = `${"A".repeat(5000)}`;
    assert.throws(
      () => parseReference(input),
      (err: unknown) =>
        err instanceof FerryError && err.message.length < 300 && err.fields["input"] === input,
    );
  });
});

describe("parseRepository", () => {
  it("normalizes like parseReference", () => {
    assert.deepEqual(
      { ...parseRepository("postgres") },
      { domain: "docker.io", path: "library/postgres" },
    );
    assert.deepEqual(
      { ...parseRepository("index.docker.io/u/a") },
      { domain: "docker.io", path: "u/a" },
    );
    assert.deepEqual(
      { ...parseRepository("localhost:5000/a/b") },
      { domain: "localhost:5000", path: "a/b" },
    );
    assert.deepEqual({ ...parseRepository("[::1]:5000/a") }, { domain: "[::1]:5000", path: "a" });
  });

  for (const [input, reason] of [
    ["app:1", "a repository name cannot include a tag"],
    [`app@${SHA256}`, "a repository name cannot include a digest"],
    ["App", "repository name must be lowercase"],
    ["a//b", "empty path component"],
    ["", "reference is empty"],
  ] as const) {
    it(`rejects ${JSON.stringify(input)}: ${reason}`, () => {
      assert.throws(
        () => parseRepository(input),
        (err: unknown) =>
          err instanceof FerryError &&
          err.code === "FERRY_INVALID_REFERENCE" &&
          err.message.includes(reason),
      );
    });
  }
});

describe("isUnqualified", () => {
  for (const [input, expected] of [
    ["postgres", true],
    ["postgres:16", true],
    ["user/app", true],
    [`user/app@${SHA256}`, true],
    ["localhost:5000", true],
    ["docker.io/postgres", false],
    ["index.docker.io/user/app", false],
    ["localhost/app", false],
    ["ghcr.io/o/a", false],
    ["localhost:5000/a", false],
    ["[::1]/a", false],
    ["Registry/app", false],
  ] as const) {
    it(`${JSON.stringify(input)} → ${expected}`, () => {
      assert.equal(isUnqualified(input), expected);
    });
  }
});
