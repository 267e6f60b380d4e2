import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { heldForPlatform } from "./platform.ts";

const held = (os?: string, architecture?: string, variant?: string) => ({
  os,
  architecture,
  variant,
});

describe("heldForPlatform (Docker's image inspect against a listed platform)", () => {
  it("another architecture or os is not the listed platform", () => {
    assert.equal(heldForPlatform("linux/amd64", held("linux", "arm64")), false);
    assert.equal(heldForPlatform("windows/amd64", held("linux", "amd64")), false);
    assert.equal(heldForPlatform("linux/amd64", held("linux", "amd64")), true);
  });

  it("compares a variant only when the list names one; arm64's v8 is its default", () => {
    assert.equal(heldForPlatform("linux/arm", held("linux", "arm", "v6")), true);
    assert.equal(heldForPlatform("linux/arm/v7", held("linux", "arm", "v6")), false);
    assert.equal(heldForPlatform("linux/arm64/v8", held("linux", "arm64")), true);
    assert.equal(heldForPlatform("linux/arm64", held("linux", "arm64", "v8")), true);
  });

  it("an image that does not say its platform is taken as it is", () => {
    assert.equal(heldForPlatform("linux/amd64", held()), true);
  });
});
