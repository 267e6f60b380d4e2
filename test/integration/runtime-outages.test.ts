// The CRI target through outages of what it talks to, against a real containerd and real
// registries: a registry down (directly, or behind a ferry mirror answering 503) fails a pull as
// transient, and containerd restarted in place answers ferry's first call once it is back.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isTransientWarmError } from "../../src/agent/index.ts";
import { isFerryError } from "../../src/observe/index.ts";
import { parseReference } from "../../src/reference/index.ts";
import { CriTarget } from "../../src/runtime/index.ts";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { pushImage } from "../fixtures/images.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd, writeMirrorHosts } from "../fixtures/runtimes.ts";
import { type FerryProcess, removeDir, startFerry, tempDir, until } from "./cli.ts";

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

describe("the CRI target through registry and containerd outages", () => {
  let direct: RunningRegistry; // pulled from directly
  let mirrored: RunningRegistry; // pulled through a ferry mirror (containerd's hosts.toml)
  let mirror: FerryProcess;
  let containerd: RunningContainerd;
  let work: string;

  before(async () => {
    work = await tempDir("runtime-outages");
    const layers = [await busyboxLayer(["sh"])];
    [direct, mirrored] = await Promise.all([startRegistry(), startRegistry()]);
    await Promise.all([
      pushImage(direct.host, "down/app", "v1", { layers }),
      pushImage(mirrored.host, "down/app", "v1", { layers }),
    ]);
    const port = await freePort();
    mirror = startFerry([
      "mirror",
      "--listen",
      `127.0.0.1:${port}`,
      "--upstream",
      mirrored.url,
      "--store",
      join(work, "mirror-store"),
    ]);
    const mirrorUrl = `http://127.0.0.1:${port}`;
    await until("the mirror to answer", async () =>
      (await fetch(`${mirrorUrl}/v2/`).catch(() => undefined))?.ok ? true : undefined,
    );
    const hostsDir = join(work, "hosts");
    await writeMirrorHosts(hostsDir, mirrored.host, mirrorUrl);
    containerd = await startContainerd({
      extraConfig: `[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${hostsDir}"\n`,
    });
  });
  after(async () => {
    mirror?.child.kill("SIGTERM");
    await mirror?.result;
    await Promise.all([direct?.stop(), mirrored?.stop()]);
    await containerd?.stop();
    await removeDir(work);
  });

  test("a pull while the registry is down fails as the registry unavailable, a transient failure", async () => {
    const cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
    await direct.kill();
    try {
      const err = await rejection(cri.pull(parseReference(`${direct.host}/down/app:v1`)));
      assert.ok(isFerryError(err), String(err));
      assert.equal(err.code, "FERRY_REGISTRY_UNAVAILABLE", err.message);
      assert.match(err.message, /containerd could not pull .*connection refused/);
      assert.ok(isTransientWarmError(err));
    } finally {
      await direct.revive();
      await cri.close();
    }
  });

  test("a pull through a mirror answering 503 (its upstream down) is transient too", async () => {
    const cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
    await mirrored.kill();
    try {
      const err = await rejection(cri.pull(parseReference(`${mirrored.host}/down/app:v1`)));
      assert.ok(isFerryError(err), String(err));
      assert.equal(err.code, "FERRY_REGISTRY_UNAVAILABLE", err.message);
      assert.match(err.message, /503/);
      assert.ok(isTransientWarmError(err));
    } finally {
      await mirrored.revive();
      await cri.close();
    }
  });

  test("after containerd restarts, the target's first call answers and none failed but as unavailable", async () => {
    const cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
    const ref = parseReference(`${direct.host}/down/app:v1`);
    await cri.status(ref);
    const seen = new Set<string>();
    let restarted = false;
    // Down long enough for the channel's reconnect backoff to reach its cap.
    const restart = containerd.restart(8_000).then(() => {
      restarted = true;
    });
    while (!restarted) {
      const err = await rejection(cri.status(ref)).catch(() => undefined);
      if (isFerryError(err)) seen.add(err.code);
      // Paces the calls only (the loop ends on the restart's own promise).
      await sleep(50);
    }
    await restart;
    try {
      const presence = await cri.status(ref);
      assert.equal(presence.present, false);
      assert.deepEqual([...seen], ["FERRY_RUNTIME_UNAVAILABLE"]);
    } finally {
      await cri.close();
    }
  });
});
