// The point of pre-pulling: after `ferry warm` into Docker and containerd, containers start
// with the registry gone. Real registry, real dockerd and containerd, real runc.
import assert from "node:assert/strict";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FileSpec, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  type RunningContainerd,
  type RunningDockerd,
  startContainerd,
  startDockerd,
} from "../fixtures/runtimes.ts";
import { describeRun, ferry, removeDir, tempDir } from "./cli.ts";

describe("warmed images start with the registry stopped", () => {
  let registry: RunningRegistry | undefined;
  let containerd: RunningContainerd;
  let dockerd: RunningDockerd;
  let work: string;
  let image: string;

  before(async () => {
    work = await tempDir("ferry-offline-");
    const layers: FileSpec[][] = [
      await busyboxLayer(["echo", "cat"]),
      [{ path: "etc/greeting", content: "warmed before it was needed\n" }],
    ];
    registry = await startRegistry();
    await pushImage(registry.host, "offline/app", "v1", { layers });
    image = `${registry.host}/offline/app:v1`;
    containerd = await startContainerd();
    dockerd = await startDockerd(containerd.socket);
  });

  after(async () => {
    await dockerd?.stop();
    await containerd?.stop();
    await registry?.stop();
    await removeDir(work);
  });

  test("ferry warm into docker and containerd, stop the registry, run both", async () => {
    const list = join(work, "images.yaml");
    await writeFile(list, `targets: [docker, containerd]\nimages:\n  - ${image}\n`);
    const warmed = await ferry([
      "warm",
      "-f",
      list,
      "--docker-host",
      dockerd.host,
      "--cri-endpoint",
      `unix://${containerd.socket}`,
      "--store",
      join(work, "store"),
    ]);
    assert.equal(warmed.code, 0, describeRun(warmed));
    assert.match(warmed.stdout, /PULLED/);

    await registry?.stop();
    registry = undefined;

    const check = await ferry([
      "check",
      "-f",
      list,
      "--docker-host",
      dockerd.host,
      "--cri-endpoint",
      `unix://${containerd.socket}`,
    ]);
    assert.equal(check.code, 0, describeRun(check));
    assert.doesNotMatch(check.stdout, /MISSING/);

    const viaDocker = await dockerd.docker([
      "run",
      "--rm",
      "--network",
      "none",
      image,
      "cat",
      "/etc/greeting",
    ]);
    assert.equal(viaDocker.stdout, "warmed before it was needed\n");

    // Kubelet's namespace: where the CRI put it.
    const viaCtr = await containerd.ctr([
      "-n",
      "k8s.io",
      "run",
      "--rm",
      image,
      "ferry-offline",
      "cat",
      "/etc/greeting",
    ]);
    assert.equal(viaCtr.stdout, "warmed before it was needed\n");
  });
});
