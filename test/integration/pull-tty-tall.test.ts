// Progress on a terminal shorter than the pull: tmux with a 10-row window, a real registry.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { FERRY_BIN, removeDir, shortId, tempDir, until } from "./cli.ts";

const run = promisify(execFile);
const LAYERS = 27;

describe("pull on a terminal shorter than the layer list", () => {
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let dir: string;
  let images: BuiltImage[];
  // A tmux server of this test's own, so no other session is touched.
  const socket = `ferry-tty-${process.pid}`;
  const tmux = (...args: string[]) => run("tmux", ["-L", socket, ...args], { encoding: "utf8" });

  before(async () => {
    registry = await startRegistry();
    const layers = (image: string) =>
      Array.from({ length: LAYERS }, (_, i) => [
        { path: `l${i}`, size: 40_000, seed: `${image}-${i}` },
      ]);
    images = await Promise.all([
      pushImage(registry.host, "tall/one", "v1", { layers: layers("one"), level: 0 }),
      pushImage(registry.host, "tall/two", "v1", { layers: layers("two"), level: 0 }),
    ]);
    // 40 kB a layer at 200 kB/s: redraws while layers of both images are in flight.
    proxy = await startProxy({ target: registry.host, bytesPerSecond: 200_000 });
    dir = await tempDir("tty-tall");
  });
  after(async () => {
    await tmux("kill-server").catch(() => undefined);
    await proxy?.stop();
    await registry?.stop();
    await removeDir(dir);
  });

  for (const rows of [10, 3])
    it(`${rows} rows: the live region stays on screen, each header once, each layer under its own image`, async () => {
      const names = ["tall/one:v1", "tall/two:v1"].map((n) => `${proxy.host}/${n}`);
      const pull = `${process.execPath} ${FERRY_BIN} pull --store ${join(dir, `s${rows}`)} ${names.join(" ")}`;
      // `exec cat` keeps the pane (and its scrollback) after ferry exits.
      await tmux(
        "new-session",
        "-d",
        "-s",
        `rows${rows}`,
        "-x",
        "80",
        "-y",
        String(rows),
        `sh -c '${pull}; echo "exit=$?"; exec cat'`,
      );
      const screen = await until("ferry to exit", async () => {
        const { stdout } = await tmux(
          "capture-pane",
          "-t",
          `rows${rows}`,
          "-p",
          "-J",
          "-S",
          "-",
          "-E",
          "-",
        );
        return /exit=\d+/.test(stdout) ? stdout : undefined;
      });
      assert.match(screen, /exit=0/, screen);
      const lines = screen.split("\n");
      for (const [i, image] of images.entries()) {
        const head = `v1: Pulling from tall/${i === 0 ? "one" : "two"}`;
        const at = lines.flatMap((l, n) => (l === head ? [n] : []));
        assert.equal(
          at.length,
          1,
          `"${head}" once in the scrollback, not ${at.length} times:\n${screen}`,
        );
        const start = at[0] as number;
        const end = lines.findIndex((l, n) => n > start && l.startsWith("Digest: "));
        const block = lines.slice(start + 1, end);
        for (const layer of image.layers) {
          const done = `${shortId(layer.digest)}: Pull complete`;
          assert.equal(
            lines.filter((l) => l === done).length,
            1,
            `${done} once in the scrollback:\n${screen}`,
          );
          assert.ok(block.includes(done), `${done} under its image's header:\n${screen}`);
        }
        assert.equal(block.length, LAYERS, `only ${head}'s layers under it:\n${screen}`);
      }
    });
});
