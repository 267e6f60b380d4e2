// Unpinning is level-triggered: an image taken off the list while containerd is restarting and
// the store's disk (a real tmpfs) is full loses its pin in both once they are usable again, and
// the log says which unpin failed and which succeeded.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runAgent } from "../../src/agent/index.ts";
import { anonymous } from "../../src/config/index.ts";
import { CriTarget, PINNED_LABEL } from "../../src/runtime/index.ts";
import { FerryAnnotation, Store } from "../../src/store/index.ts";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { fillDisk, mountTmpfs } from "../fixtures/soak/tmpfs.ts";
import { describeRun, entriesFor, ferry, isolatedEnv, removeDir, tempDir, until } from "./cli.ts";

/** Short waits for the test; the defaults (5 s → 5 min) are unit-tested in backoff.test.ts. */
const RETRY = { required: { initialMs: 200, maxMs: 1_000 } };

describe("the agent unpins images taken off its list, whatever fails on the way", () => {
  let registry: RunningRegistry;
  let containerd: RunningContainerd;
  let work: string;
  let unmount: (() => Promise<void>) | undefined;

  before(async () => {
    work = await tempDir("agent-unpins");
    const base = await busyboxLayer(["sh"]);
    [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
    // gone and kept are distinct images; old and alias one image under two names.
    await Promise.all(
      [
        ["gone", "gone"],
        ["kept", "kept"],
        ["old", "shared"],
        ["alias", "shared"],
      ].map(([name, content]) =>
        pushImage(registry.host, `unpin/${name}`, "v1", {
          layers: [[...base, { path: "etc/name", content: `${content}\n` }]],
        }),
      ),
    );
  });
  after(async () => {
    await unmount?.();
    await registry?.stop();
    await containerd?.stop();
    await removeDir(work);
  });

  test("containerd down and the store's disk full during the edit: both unpinned once back", async () => {
    const gone = `${registry.host}/unpin/gone:v1`;
    const kept = `${registry.host}/unpin/kept:v1`;
    const disk = join(work, "disk");
    await mkdir(disk);
    unmount = await mountTmpfs(disk, 64 * 1024 * 1024);
    const storeDir = join(disk, "store");
    const env = isolatedEnv(join(work, "home"));
    for (const args of [
      ["pull", gone],
      ["pin", gone],
    ]) {
      const r = await ferry([...args, "--store", storeDir], env);
      assert.equal(r.code, 0, describeRun(r));
    }
    const store = await Store.open(storeDir);
    const listFile = join(work, "images.yaml");
    await writeFile(listFile, `images:\n  - ${gone}\n  - ${kept}\n`);
    const lines: Record<string, unknown>[] = [];
    const cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
    const abort = new AbortController();
    const running = runAgent({
      listFile,
      targets: ["containerd"],
      host: "127.0.0.1",
      port: 0,
      retry: RETRY,
      store,
      openTargets: async () => ({
        targets: [cri],
        credentials: anonymous,
        store: undefined,
        close: () => cri.close(),
      }),
      log: (entry) => lines.push(entry),
      signal: abort.signal,
    });
    const pinnedInContainerd = async (image: string) => {
      const { stdout } = await containerd.ctr(["-n", "k8s.io", "images", "ls"]);
      const line = stdout.split("\n").find((l) => l.startsWith(`${image} `));
      return line === undefined ? undefined : line.includes(PINNED_LABEL);
    };
    const pinnedInStore = async (image: string) =>
      (await entriesFor(storeDir, image))[0]?.annotations?.[FerryAnnotation.pinned] === "true";
    const failed = (target: RegExp) =>
      lines.some(
        (l) => l.msg === "unpin failed: tried again later" && target.test(String(l.target)),
      );
    try {
      await until("gone:v1 pinned in containerd", async () =>
        (await pinnedInContainerd(gone)) ? true : undefined,
      );
      assert.equal(await pinnedInStore(gone), true);

      const filler = await fillDisk(disk);
      const restarting = containerd.restart(2_000);
      await until("containerd down", async () =>
        (await cri.ping().then(
          () => false,
          () => true,
        ))
          ? true
          : undefined,
      );
      await writeFile(listFile, `images:\n  - ${kept}\n`);
      await until("both unpins failed", () =>
        failed(/^containerd/) && failed(/^store$/) ? true : undefined,
      );
      await restarting;
      await filler.free();

      await until("gone:v1 unpinned in containerd and in the store", async () =>
        (await pinnedInContainerd(gone)) === false && !(await pinnedInStore(gone))
          ? true
          : undefined,
      );
      const unpinned = lines.filter((l) => l.msg === "unpinned" && l.image === gone);
      assert.deepEqual(unpinned.map((l) => String(l.target).split(" ")[0]).sort(), [
        "containerd",
        "store",
      ]);
      assert.equal(await pinnedInContainerd(kept), true, "the image still listed keeps its pin");
      const reloaded = lines.find((l) => l.msg === "image list reloaded");
      assert.deepEqual(reloaded?.unpinning, [gone]);
    } finally {
      abort.abort();
      await running;
    }
  });

  test("a name taken off the list whose image another required name shares: that name stays pinned", async () => {
    const old = `${registry.host}/unpin/old:v1`;
    const alias = `${registry.host}/unpin/alias:v1`;
    const listFile = join(work, "shared.yaml");
    await writeFile(listFile, `images:\n  - ${old}\n  - ${alias}\n`);
    const lines: Record<string, unknown>[] = [];
    const cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
    const abort = new AbortController();
    const running = runAgent({
      listFile,
      targets: ["containerd"],
      host: "127.0.0.1",
      port: 0,
      retry: RETRY,
      openTargets: async () => ({
        targets: [cri],
        credentials: anonymous,
        store: undefined,
        close: () => cri.close(),
      }),
      log: (entry) => lines.push(entry),
      signal: abort.signal,
    });
    const pinned = async (image: string) => {
      const { stdout } = await containerd.ctr(["-n", "k8s.io", "images", "ls"]);
      return stdout
        .split("\n")
        .find((l) => l.startsWith(`${image} `))
        ?.includes(PINNED_LABEL);
    };
    try {
      await until("both names pinned", async () =>
        (await pinned(old)) && (await pinned(alias)) ? true : undefined,
      );
      await writeFile(listFile, `images:\n  - ${alias}\n`);
      // Unpinning old takes the label off every name of the image, alias's too.
      await until("old unpinned", () =>
        lines.some((l) => l.msg === "unpinned" && l.image === old && l.removed === true)
          ? true
          : undefined,
      );
      await until("alias, still required, pinned again", async () =>
        (await pinned(alias)) ? true : undefined,
      );
    } finally {
      abort.abort();
      await running;
    }
  });
});
