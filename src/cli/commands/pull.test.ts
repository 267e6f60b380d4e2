import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseReference } from "../../reference/index.ts";
import { networkError } from "../../registry/index.ts";
import type { Output } from "../output.ts";
import { createRenderer } from "../render-pull.ts";
import { reportPullFailure } from "./pull.ts";

function capture(): Output & { stdout: string; stderr: string } {
  const o = {
    stdout: "",
    stderr: "",
    isTTY: false,
    columns: 80,
    out: (text: string) => {
      o.stdout += text;
    },
    err: (text: string) => {
      o.stderr += text;
    },
  };
  return o;
}

// No network: the error is what a failed DNS lookup of Docker Hub's API host turns into.
const dnsFailure = () =>
  networkError(
    Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }),
    "https://registry-1.docker.io/v2/",
  );

describe("reportPullFailure", () => {
  it("names the fully resolved reference of a Docker Hub name, not the text typed", () => {
    const cases: Array<[string, string]> = [
      ["nosuchimage:1", "docker.io/library/nosuchimage:1"],
      ["user/app", "docker.io/user/app:latest"],
      [
        "index.docker.io/x@sha256:" + "a".repeat(64),
        `docker.io/library/x@sha256:${"a".repeat(64)}`,
      ],
    ];
    for (const [typed, resolved] of cases) {
      const output = capture();
      const code = reportPullFailure(dnsFailure(), parseReference(typed), output, undefined);
      assert.equal(code, 5);
      assert.equal(
        output.stderr.split("\n")[0],
        `ferry: ${resolved}: cannot resolve registry host registry-1.docker.io (DNS lookup failed)`,
      );
      assert.match(output.stderr, /\n {2}hint: /);
    }
  });

  it("--json: the error event's reference is the resolved one", () => {
    const output = capture();
    const code = reportPullFailure(
      dnsFailure(),
      parseReference("nosuchimage:1"),
      output,
      createRenderer("json", output),
      true,
    );
    assert.equal(code, 5);
    const event = JSON.parse(output.stdout) as Record<string, unknown>;
    assert.equal(event.event, "error");
    assert.equal(event.reference, "docker.io/library/nosuchimage:1");
    assert.equal(event.code, "FERRY_UNREACHABLE");
    assert.equal(output.stderr, "");
  });
});
