// The lazy module's LazyLayers against a real registry and FUSE: eStargz layers added to and
// removed from one mounted filesystem, read on demand, and with background fetch on, copied
// whole into the chunk cache so that every file still reads once the registry is gone.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LazyLayers, type LazyLayersEvent } from "../../src/lazy/index.ts";
import { RegistryClient } from "../../src/registry/index.ts";
import { pushImage, seededBytes } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { forceUnmount } from "../fixtures/fuse-mount.ts";
import { describeRun, ferry, isolatedEnv, removeDir, tempDir, until } from "./cli.ts";

const SIZE = 3 * 1024 * 1024 + 11;

interface Manifest {
  layers: Array<{
    digest: string;
    size: number;
    mediaType: string;
    annotations?: Record<string, string>;
  }>;
}

async function sha256Of(name: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  for await (const part of seededBytes(name, size)) hash.update(part);
  return hash.digest("hex");
}

describe("LazyLayers", { timeout: 120_000 }, () => {
  let registry: RunningRegistry;
  let home: string;
  let manifest: Manifest;
  const mounts: string[] = [];
  const repository = () => ({ domain: registry.host, path: "layers/app" });

  async function mount(name: string, background?: number) {
    const dir = join(home, name);
    await mkdir(dir, { recursive: true });
    mounts.push(dir);
    const events: Array<{ name: string; event: LazyLayersEvent }> = [];
    const layers = await LazyLayers.mount({
      dir,
      storeDir: join(home, `store-${name}`),
      fetchTimeoutMs: 3000,
      backgroundBytesPerSecond: background,
      onEvent: (layer, event) => events.push({ name: layer, event }),
    });
    return { layers, events };
  }

  before(async () => {
    [registry, home] = await Promise.all([startRegistry(), tempDir("lazy-layers")]);
    await pushImage(registry.host, "layers/app", "plain", {
      layers: [
        [
          { path: "data", type: "dir" },
          { path: "data/a.bin", size: SIZE },
          { path: "data/b.bin", size: SIZE },
        ],
      ],
    });
    const r = await ferry(
      [
        "convert",
        "--estargz",
        "--store",
        join(home, "convert"),
        `${registry.host}/layers/app:plain`,
        `${registry.host}/layers/app:esgz`,
      ],
      isolatedEnv(home),
    );
    assert.equal(r.code, 0, describeRun(r));
    const res = await fetch(`http://${registry.host}/v2/layers/app/manifests/esgz`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    manifest = (await res.json()) as Manifest;
  });

  after(async () => {
    for (const dir of mounts) forceUnmount(dir);
    await registry?.stop();
    await removeDir(home);
  });

  test("a layer is a directory while it is added: read on demand, gone once removed", async () => {
    const { layers } = await mount("on-demand");
    const [layer] = manifest.layers;
    assert.ok(layer !== undefined);
    const dir = await layers.add("7", {
      registry: new RegistryClient(),
      repository: repository(),
      descriptor: layer,
    });
    assert.equal(dir, join(home, "on-demand", "7"));
    assert.deepEqual(await readdir(join(dir, "data")), ["a.bin", "b.bin"]);
    const a = await readFile(join(dir, "data/a.bin"));
    assert.equal(createHash("sha256").update(a).digest("hex"), await sha256Of("data/a.bin", SIZE));
    const stats = layers.stats("7");
    assert.ok(
      stats !== undefined && stats.fetchedBytes < layer.size - SIZE,
      "b.bin was not fetched",
    );
    await layers.remove("7");
    await assert.rejects(readdir(join(home, "on-demand", "7")), { code: "ENOENT" });
    await layers.unmount();
  });

  test("with background fetch on, the whole layer lands in the cache: every file reads with the registry gone", async () => {
    const { layers, events } = await mount("background", 256 * 1024 * 1024);
    const [layer] = manifest.layers;
    assert.ok(layer !== undefined);
    const dir = await layers.add("1", {
      registry: new RegistryClient(),
      repository: repository(),
      descriptor: layer,
    });
    const done = await until("the background fetch to finish", () =>
      events.find((e) => e.event.type === "background-done"),
    );
    assert.deepEqual(done.event.type === "background-done" && done.event.failed, 0);
    assert.equal(done.name, "1");
    await registry.kill();
    try {
      for (const name of ["a.bin", "b.bin"]) {
        const bytes = await readFile(join(dir, "data", name));
        assert.equal(
          createHash("sha256").update(bytes).digest("hex"),
          await sha256Of(`data/${name}`, SIZE),
        );
      }
    } finally {
      await registry.revive();
    }
    await layers.unmount();
  });
});
