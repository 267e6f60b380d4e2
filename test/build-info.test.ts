import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { sourceBuildInfo } from "../src/cli/build-info.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

describe("ferry version (src/cli/build-info.ts)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-build-info-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("from the sources, reports the checkout's version and HEAD commit, and Node and the platform", async () => {
    const head = (await run("git", ["-C", ROOT, "rev-parse", "HEAD"])).stdout.trim();
    // FERRY_FROM_SOURCE: a bundle (npm run build) reports the commit it was built at instead.
    const { stdout } = await run(
      process.execPath,
      [join(ROOT, "bin/ferry.js"), "--version", "--json"],
      {
        env: { ...process.env, FERRY_FROM_SOURCE: "1" },
      },
    );
    const report = JSON.parse(stdout) as Record<string, string>;
    assert.equal(report.version, "0.1.0");
    assert.match(report.commit ?? "", new RegExp(`^${head}(-dirty)?$`));
    assert.ok(!Number.isNaN(Date.parse(report.date ?? "")), `date: ${report.date}`);
    assert.equal(report.node, process.version);
    assert.match(report.platform ?? "", /^linux\/(amd64|arm64)/);
  });

  it("an unpacked package inside another repository does not report that repository's commit", async () => {
    const repo = join(dir, "project");
    const pkg = join(repo, "node_modules", "ferry");
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, "package.json"), '{"version":"9.9.9"}');
    await run("git", ["init", "-q", repo]);
    await run("git", [
      "-C",
      repo,
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@t",
      "commit",
      "-q",
      "--allow-empty",
      "-m",
      "x",
    ]);
    assert.deepEqual(sourceBuildInfo(pkg), {
      version: "9.9.9",
      commit: "unknown",
      date: "unknown",
    });
  });

  it("a build-info.json beside package.json (the container image) gives the commit and date", async () => {
    const pkg = join(dir, "image-app");
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, "package.json"), '{"version":"1.2.3"}');
    const stamp = { version: "ignored", commit: "a".repeat(40), date: "2026-01-02T03:04:05.000Z" };
    await writeFile(join(pkg, "build-info.json"), JSON.stringify(stamp));
    assert.deepEqual(sourceBuildInfo(pkg), { ...stamp, version: "1.2.3" });
  });
});
