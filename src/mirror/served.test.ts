import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { DistributionError } from "./errors.ts";
import { parseServedList, ServedRegistries } from "./served.ts";

function refusal(served: ServedRegistries, ns: string | undefined): string | undefined {
  try {
    served.check(ns);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof DistributionError);
    assert.equal(err.status, 403);
    assert.equal(err.code, "DENIED");
    return err.message;
  }
}

describe("ServedRegistries", () => {
  it("serves the upstream (with or without ?ns=) and the listed registries, nothing else", () => {
    const served = new ServedRegistries("registry.example:5000", ["ghcr.io", "127.0.0.1:5001"]);
    for (const ok of [undefined, "registry.example:5000", "GHCR.io", "127.0.0.1:5001"])
      assert.equal(refusal(served, ok), undefined, ok);
    for (const bad of ["quay.io", "127.0.0.1:5002", "localhost:22", "127.0.0.1"])
      assert.match(refusal(served, bad) ?? "", /does not serve registry/, bad);
  });

  it("folds Docker Hub's names into one", () => {
    const served = new ServedRegistries("docker.io", []);
    assert.equal(refusal(served, "index.docker.io"), undefined);
    assert.equal(refusal(served, "registry-1.docker.io"), undefined);
  });

  it("* serves any registry host, never a link-local, metadata or malformed one", () => {
    const served = new ServedRegistries("docker.io", ["*"]);
    assert.equal(refusal(served, "quay.io"), undefined);
    assert.equal(refusal(served, "127.0.0.1:5002"), undefined);
    for (const bad of [
      "169.254.169.254",
      "[fe80::1]:80",
      "0.0.0.0:5000",
      "user@quay.io",
      "quay.io/x",
    ])
      assert.notEqual(refusal(served, bad), undefined, bad);
  });
});

describe("parseServedList", () => {
  it("takes hosts and *, trimmed, empties dropped", () => {
    assert.deepEqual(parseServedList([" ghcr.io", "", "127.0.0.1:5000 ", "*"], "--allow-ns"), [
      "ghcr.io",
      "127.0.0.1:5000",
      "*",
    ]);
  });
  it("refuses what is not a registry host, saying where it came from", () => {
    for (const bad of ["https://ghcr.io", "ghcr.io/org", "169.254.169.254"])
      assert.throws(
        () => parseServedList([bad], "--allow-ns"),
        (err) =>
          isFerryError(err, "FERRY_INVALID_ARGUMENT") && err.message.startsWith("--allow-ns"),
      );
  });
});
