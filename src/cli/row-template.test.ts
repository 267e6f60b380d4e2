import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError } from "../observe/index.ts";
import { compileRowTemplate } from "./row-template.ts";

describe("compileRowTemplate", () => {
  const fields = ["Repository", "Tag", "Size"];
  const row = { Repository: "alpine", Tag: "3.20", Size: "3.6MB" };

  it("fills placeholders and keeps the text between them", () => {
    assert.equal(compileRowTemplate("{{.Repository}}:{{.Tag}}", fields)(row), "alpine:3.20");
    assert.equal(
      compileRowTemplate("{{ .Size }} for {{.Repository}}", fields)(row),
      "3.6MB for alpine",
    );
  });

  it("reads \\t and \\n as Docker does", () => {
    assert.equal(compileRowTemplate("{{.Repository}}\\t{{.Tag}}", fields)(row), "alpine\t3.20");
  });

  it("refuses an unknown field, naming the ones there are", () => {
    assert.throws(
      () => compileRowTemplate("{{.ID}}", fields),
      (err: unknown) =>
        err instanceof FerryError &&
        err.code === "FERRY_INVALID_ARGUMENT" &&
        /unknown placeholder \{\{\.ID\}\}/.test(err.message) &&
        (err.hint ?? "").includes("{{.Repository}} {{.Tag}} {{.Size}}"),
    );
    assert.throws(() => compileRowTemplate("{{json .}}", fields), FerryError);
  });
});
