import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { closest, editDistance } from "./suggest.ts";

describe("closest", () => {
  const commands = ["pull", "push", "prune", "images", "inspect", "convert", "copy"];

  it("finds the word a typo meant: a letter missing, extra, wrong or swapped", () => {
    assert.equal(closest("pul", commands), "pull");
    assert.equal(closest("imagess", commands), "images");
    assert.equal(closest("convrt", commands), "convert");
    assert.equal(closest("inpsect", commands), "inspect");
    assert.equal(
      closest("--concurency", ["--concurrency", "--config", "--store"]),
      "--concurrency",
    );
  });

  it("suggests nothing for another word, or for a short word two edits away", () => {
    assert.equal(closest("xyzzy", commands), undefined);
    assert.equal(closest("pl", commands), undefined);
    assert.equal(closest("--frobnicate", ["--concurrency", "--config"]), undefined);
  });

  it("counts edits, a swap of neighbours as one", () => {
    assert.equal(editDistance("", "pull"), 4);
    assert.equal(editDistance("pull", "pull"), 0);
    assert.equal(editDistance("pul", "pull"), 1);
    assert.equal(editDistance("pusl", "push"), 1);
    assert.equal(editDistance("ab", "ba"), 1);
    assert.equal(editDistance("kitten", "sitting"), 3);
  });
});
