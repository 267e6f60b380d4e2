// Live progress on a terminal: ferry run under a real pseudo-terminal (util-linux `script`).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { FERRY_BIN, ferry, removeDir, tempDir } from "./cli.ts";

const run = promisify(execFile);
const ESC = String.fromCharCode(27);
const CURSOR_UP = new RegExp(`${ESC}\\[\\d+A`);

describe("pull on a terminal", () => {
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let dir: string;

  before(async () => {
    registry = await startRegistry();
    // 6 MB at 3 MB/s: long enough for several redraws.
    await pushImage(registry.host, "tty/app", "v1", {
      layers: [[{ path: "big", size: 6_000_000 }]],
      level: 0,
    });
    proxy = await startProxy({ target: registry.host, bytesPerSecond: 3_000_000 });
    dir = await tempDir("ferry-tty-");
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  it("draws progress bars in place, then the summary", async () => {
    const command = `${process.execPath} ${FERRY_BIN} pull --store ${join(dir, "a")} ${proxy.host}/tty/app:v1`;
    const { stdout } = await run("script", ["-qfec", command, "/dev/null"], { encoding: "utf8" });
    assert.match(
      stdout,
      /Downloading \[=*>? *\] [\d.]+[kM]B\/6\.\d+MB/,
      "a progress bar with bytes",
    );
    assert.match(stdout, CURSOR_UP, "redraws move the cursor up");
    assert.match(stdout, /Pull complete/);
    assert.match(stdout, /Status: Downloaded newer image for /);
  });

  it("prints plain lines without escape codes when not on a terminal", async () => {
    const r = await ferry(["pull", "--store", join(dir, "b"), `${proxy.host}/tty/app:v1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(ESC), "no escape codes");
    assert.doesNotMatch(r.stdout, /Downloading/);
    assert.match(r.stdout, /: Pull complete\n/);
  });
});
