import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { optionsInUsage } from "./help-options.ts";

describe("optionsInUsage", () => {
  it("takes the Usage line's options and those that start option lines, not those in prose", () => {
    const usage = `Usage: ferry images [-q] [--format FORMAT | --json] [--store DIR]

It is the SIZE of \`ferry df -v\`, for multi-platform images too.

Options:
  -q, --quiet       print only references
  --format FORMAT   a template; see --json
                    --also-not-this
  --store DIR       store directory
`;
    assert.deepEqual(optionsInUsage(usage), [
      "-q",
      "--format",
      "--json",
      "--store",
      "--quiet",
      "--help",
    ]);
  });
});
