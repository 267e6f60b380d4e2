// Warming image lists into ferry's store from a real Distribution registry: the warm logic
// in-process (retries, pins, limits), and `ferry warm -f`, `ferry check`, `ferry bootstrap`.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  createCheckFunction,
  createStoreTarget,
  createWarmFunction,
  type ImageEntry,
  parseImageList,
  runBootstrap,
  type WarmResult,
} from "../../src/agent/index.ts";
import type { CredentialSource } from "../../src/config/index.ts";
import { Puller } from "../../src/pull/index.ts";
import { RegistryClient } from "../../src/registry/index.ts";
import { Store } from "../../src/store/index.ts";
import { type BuiltImage, pushImage, pushIndex } from "../fixtures/images.ts";
import { startProxy } from "../fixtures/proxy.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import {
  describeRun,
  entriesFor,
  type FerryResult,
  ferry,
  lines,
  ndjson,
  removeDir,
  startFerry,
  tempDir,
  until,
} from "./cli.ts";

const NO_RETRY = { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10, maxElapsedMs: 1000 };

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

/** A TCP forwarder on a chosen port: the registry "comes up" there when this starts. */
async function forward(port: number, target: string): Promise<Server> {
  const [host, targetPort] = target.split(":") as [string, string];
  const server = createServer((socket) => {
    const upstream = connect(Number(targetPort), host);
    socket.pipe(upstream).pipe(socket);
    socket.on("error", () => upstream.destroy());
    upstream.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

describe("warm, check and bootstrap", () => {
  let registry: RunningRegistry;
  let work: string;
  let app: BuiltImage;
  let n = 0;
  const fresh = (name: string) => join(work, `${name}-${++n}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir("warm");
    [app] = await Promise.all([
      pushImage(registry.host, "warm/app", "v1", {
        layers: [[{ path: "app", content: "app v1\n" }], [{ path: "data", size: 20_000 }]],
      }),
      pushImage(registry.host, "warm/tool", "v1", { layers: [[{ path: "tool", content: "t\n" }]] }),
      pushImage(registry.host, "warm/extra", "v1", { layers: [[{ path: "x", content: "x\n" }]] }),
    ]);
  });
  after(async () => {
    await registry?.stop();
    await removeDir(work);
  });

  async function writeList(name: string, text: string): Promise<string> {
    const path = join(work, name);
    await writeFile(path, text);
    return path;
  }

  describe("the warm function, over the real store target", () => {
    async function storeTarget(options: { registryHost?: string; retry?: typeof NO_RETRY } = {}) {
      const store = await Store.open(fresh("store"));
      const registryClient = new RegistryClient(options.retry ? { retry: options.retry } : {});
      const puller = new Puller({ registry: registryClient, store });
      return { store, puller, target: createStoreTarget({ store, puller }) };
    }
    const entries = (text: string): ImageEntry[] => [...parseImageList("test", text).images];
    const anonymousRecorder = (asked: string[]): CredentialSource => ({
      get: async (host) => {
        asked.push(host);
        return undefined;
      },
    });

    test("pulls what is missing, finds it present the next time, pins only required images", async () => {
      const { store, puller, target } = await storeTarget();
      const asked: string[] = [];
      const warm = createWarmFunction({ targets: [target], credentials: anonymousRecorder(asked) });
      const list = entries(
        `images:\n  - ${registry.host}/warm/app:v1\n  - {image: ${registry.host}/warm/tool:v1, required: false}\n`,
      );
      const seen: WarmResult[] = [];
      const first = await warm(list, { onResult: (r) => seen.push(r) });
      assert.deepEqual(
        first.map((r) => [r.image, r.state, r.required]),
        [
          [`${registry.host}/warm/app:v1`, "pulled", true],
          [`${registry.host}/warm/tool:v1`, "pulled", false],
        ],
      );
      assert.equal(first[0]?.digest, app.manifestDigest);
      assert.ok(typeof first[0]?.seconds === "number");
      assert.equal(seen.filter((r) => r.state === "pulling").length, 2);
      assert.deepEqual(asked, [registry.host, registry.host]);
      const pins = Object.fromEntries((await store.images()).map((r) => [r.reference, r.pinned]));
      assert.deepEqual(pins, {
        [`${registry.host}/warm/app:v1`]: true,
        [`${registry.host}/warm/tool:v1`]: false,
      });
      const second = await warm(list, {});
      assert.deepEqual(
        second.map((r) => r.state),
        ["present", "present"],
      );
      const check = createCheckFunction({ targets: [target] });
      const more = entries(`${registry.host}/warm/app:v1\n${registry.host}/warm/extra:v1\n`);
      assert.deepEqual(
        (await check(more, {})).map((r) => r.state),
        ["present", "missing"],
      );
      await puller.close();
    });

    test("retries transient failures with backoff; gives up after --retries; final ones at once", async () => {
      const proxy = await startProxy({ target: registry.host, failFirst: 2 });
      try {
        const { puller, target } = await storeTarget({ retry: NO_RETRY });
        const list = entries(`${proxy.host}/warm/app:v1\n`);
        const credentials: CredentialSource = { get: async () => undefined };
        const once = createWarmFunction({ targets: [target], credentials, retries: 0 });
        const [failed] = await once(list, {});
        assert.equal(failed?.state, "failed");
        assert.equal(failed?.error?.code, "FERRY_REGISTRY_UNAVAILABLE");
        // The second 503 is still to come: one retry meets it, the next one gets through.
        const patient = createWarmFunction({
          targets: [target],
          credentials,
          retries: 2,
          retryDelayMs: 20,
        });
        const [pulled] = await patient(list, {});
        assert.equal(pulled?.state, "pulled", JSON.stringify(pulled));
        const before = proxy.requests.length;
        const [unknown] = await patient(entries(`${proxy.host}/warm/absent:v1\n`), {});
        assert.equal(unknown?.error?.code, "FERRY_MANIFEST_UNKNOWN");
        assert.equal(proxy.requests.length - before, 1, "one manifest request: no retry");
        await puller.close();
      } finally {
        await proxy.stop();
      }
    });

    test("one limit over every image × target; a cancelled warm reports FERRY_INTERRUPTED", async () => {
      const { puller, target } = await storeTarget();
      const credentials: CredentialSource = { get: async () => undefined };
      const warm = createWarmFunction({ targets: [target], credentials, concurrency: 1 });
      const order: string[] = [];
      const list = entries(
        ["app", "tool", "extra"].map((x) => `${registry.host}/warm/${x}:v1`).join("\n"),
      );
      await warm(list, { onResult: (r) => order.push(r.state) });
      assert.deepEqual(order, ["pulling", "pulled", "pulling", "pulled", "pulling", "pulled"]);
      const cancelled = await warm(list, { signal: AbortSignal.abort() });
      assert.deepEqual(
        cancelled.map((r) => r.error?.code),
        ["FERRY_INTERRUPTED", "FERRY_INTERRUPTED", "FERRY_INTERRUPTED"],
      );
      await puller.close();
    });

    test("bootstrap waits for a target to answer, then warms and runs the ready hooks", async () => {
      const root = fresh("late-store");
      const store = await Store.open(root);
      const puller = new Puller({ registry: new RegistryClient(), store });
      const target = createStoreTarget({ store, puller });
      const credentials: CredentialSource = { get: async () => undefined };
      const warm = createWarmFunction({ targets: [target], credentials });
      const images = entries(`${registry.host}/warm/tool:v1\n`);
      // The store's disk is not there yet (a file stands where its directory should be).
      await rm(root, { recursive: true });
      await writeFile(root, "");
      const events: string[] = [];
      const gone = await runBootstrap({
        targets: [target],
        images,
        warm,
        timeoutMs: 600,
        targetBackoff: { initialMs: 50, maxMs: 50 },
        onEvent: (e) => events.push(e.type),
      });
      assert.equal(gone.ready, false);
      assert.equal(gone.reason, "timeout");
      assert.deepEqual(
        gone.unavailable.map((u) => u.target),
        ["store"],
      );
      assert.deepEqual(events, ["target-waiting"], "said once, not on every ping");
      let hooked = 0;
      let diskBack: Promise<void> | undefined;
      const outcome = await runBootstrap({
        targets: [target],
        images,
        warm,
        timeoutMs: 10_000,
        targetBackoff: { initialMs: 50, maxMs: 50 },
        imageBackoff: { initialMs: 50, maxMs: 50 },
        onReady: [async () => void hooked++],
        // The disk comes back once bootstrap has said it waits for the store.
        onEvent: (e) => {
          if (e.type === "target-waiting")
            diskBack ??= rm(root).then(async () => void (await Store.open(root)));
        },
      });
      assert.ok(diskBack, "bootstrap waited for the store");
      await diskBack;
      assert.equal(outcome.ready, true, JSON.stringify(outcome));
      assert.equal(hooked, 1);
      assert.deepEqual(
        outcome.results.map((r) => r.state),
        ["pulled"],
      );
      await puller.close();
    });
  });

  describe("ferry warm -f", () => {
    test("PULLED, then PRESENT on a second run; required images pinned", async () => {
      const store = fresh("store");
      const list = await writeList(
        "images.yaml",
        `images:\n  - ${registry.host}/warm/app:v1\n  - image: ${registry.host}/warm/tool:v1\n    required: false\n`,
      );
      const first = await ferry(["warm", "-f", list, "--store", store]);
      assertExit(first, 0);
      const out = lines(first.stdout);
      assert.ok(
        out.some((l) =>
          new RegExp(`^PULLED ${registry.host}/warm/app:v1 \\(\\d+(\\.\\d+)?s\\)$`).test(l),
        ),
        describeRun(first),
      );
      assert.ok(
        out.some(
          (l) =>
            l.startsWith(`PULLED ${registry.host}/warm/tool:v1 (`) && l.endsWith("s) (optional)"),
        ),
        describeRun(first),
      );
      assert.match(first.stdout, /2 pulled, 0 present in /);
      const second = await ferry(["warm", "-f", list, "--store", store]);
      assertExit(second, 0);
      assert.deepEqual(lines(second.stdout).slice(0, 2).sort(), [
        `PRESENT ${registry.host}/warm/app:v1`,
        `PRESENT ${registry.host}/warm/tool:v1 (optional)`,
      ]);
      const images = JSON.parse(
        (await ferry(["images", "--json", "--store", store])).stdout,
      ) as Array<{
        reference: string;
        pinned: boolean;
      }>;
      assert.deepEqual(
        images.map((i) => [i.reference, i.pinned]),
        [
          [`${registry.host}/warm/app:v1`, true],
          [`${registry.host}/warm/tool:v1`, false],
        ],
      );
    });

    test("a failing required image exits with its class; an optional one does not fail the run", async () => {
      const store = fresh("store");
      const required = await writeList(
        "required.txt",
        `# what this node runs\n${registry.host}/warm/app:v1\n${registry.host}/warm/missing:v1\n`,
      );
      const r = await ferry(["warm", "-f", required, "--store", store]);
      assertExit(r, 3);
      assert.match(
        r.stdout,
        new RegExp(`^FAILED ${registry.host}/warm/missing:v1: .*not found`, "m"),
      );
      assert.match(r.stdout, /^1 pulled, 0 present, 1 failed \(1 required not in place\) in /m);
      const optional = await writeList(
        "optional.yaml",
        `images:\n  - ${registry.host}/warm/app:v1\n  - {image: ${registry.host}/warm/missing:v1, required: false}\n`,
      );
      const o = await ferry(["warm", "-f", optional, "--store", store, "--json"]);
      assertExit(o, 0);
      const events = ndjson(o.stdout);
      const failed = events.find((e) => e.state === "failed");
      assert.equal(
        (failed?.error as { code?: string } | undefined)?.code,
        "FERRY_MANIFEST_UNKNOWN",
      );
      assert.deepEqual(events.at(-1), {
        ...events.at(-1),
        event: "summary",
        failed: 1,
        exitCode: 0,
      });
    });

    test("a mistake in the list points at file:line:column and exits 2", async () => {
      const list = await writeList(
        "bad.yaml",
        `images:\n  - ${registry.host}/warm/app:v1\n  - image: Bad\n`,
      );
      const r = await ferry(["warm", "-f", list, "--store", fresh("store")]);
      assertExit(r, 2);
      assert.match(
        r.stderr,
        new RegExp(`image list ${list}:3:12: images\\[1\\]\\.image: invalid reference "Bad"`),
      );
    });
  });

  describe("ferry check", () => {
    test("PRESENT and MISSING; exit 1 only when a required image is missing", async () => {
      const store = fresh("store");
      assertExit(await ferry(["pull", `${registry.host}/warm/app:v1`, "--store", store, "-q"]), 0);
      const ok = await writeList(
        "check-ok.yaml",
        `images:\n  - ${registry.host}/warm/app:v1\n  - {image: ${registry.host}/warm/tool:v1, required: false}\n`,
      );
      const r = await ferry(["check", "-f", ok, "--store", store]);
      assertExit(r, 0);
      assert.deepEqual(lines(r.stdout).slice(0, 2).sort(), [
        `MISSING ${registry.host}/warm/tool:v1 (optional)`,
        `PRESENT ${registry.host}/warm/app:v1`,
      ]);
      const missing = await ferry([
        "check",
        `${registry.host}/warm/tool:v1`,
        "--store",
        store,
        "--json",
      ]);
      assertExit(missing, 1);
      assert.equal(ndjson(missing.stdout)[0]?.state, "missing");
      assert.equal(missing.stderr, "");
    });
  });

  describe("platforms: the store holds one per name", () => {
    const ARM64 = { os: "linux", architecture: "arm64" };
    const AMD64 = { os: "linux", architecture: "amd64" };

    test("an image stored for another platform is missing; warm pulls the listed one", async () => {
      const multi = await pushIndex(registry.host, "warm/multi", "v1", [
        { platform: AMD64, layers: [[{ path: "arch", content: "amd64\n" }]] },
        { platform: ARM64, layers: [[{ path: "arch", content: "arm64\n" }]] },
      ]);
      const store = fresh("store");
      const ref = `${registry.host}/warm/multi:v1`;
      assertExit(
        await ferry(["pull", ref, "--platform", "linux/arm64", "--store", store, "-q"]),
        0,
      );
      const amd64 = await writeList(
        "amd64.yaml",
        `images:\n  - {image: ${ref}, platform: linux/amd64}\n`,
      );
      const arm64 = await writeList(
        "arm64.yaml",
        `images:\n  - {image: ${ref}, platform: linux/arm64}\n`,
      );

      const wrong = await ferry(["check", "-f", amd64, "--store", store]);
      assertExit(wrong, 1);
      assert.equal(lines(wrong.stdout)[0], `MISSING ${ref}`);
      const right = await ferry(["check", "-f", arm64, "--store", store]);
      assertExit(right, 0);
      assert.equal(lines(right.stdout)[0], `PRESENT ${ref}`);

      const warmed = await ferry(["warm", "-f", amd64, "--store", store, "--json"]);
      assertExit(warmed, 0);
      const result = ndjson(warmed.stdout).find(
        (e) => e["event"] === "result" && e["image"] === ref,
      );
      assert.equal(result?.["state"], "pulled", describeRun(warmed));
      assert.deepEqual(
        (await entriesFor(store, ref)).map((e) => [e.digest, e.platform?.architecture]),
        [[multi.images[0]?.manifestDigest, "amd64"]],
        "the name now records the amd64 image",
      );
      assertExit(await ferry(["check", "-f", amd64, "--store", store]), 0);
    });

    test("a single-platform arm64 image does not satisfy linux/amd64, and warm says so", async () => {
      const ref = `${registry.host}/warm/arm-only:v1`;
      await pushImage(registry.host, "warm/arm-only", "v1", {
        platform: ARM64,
        layers: [[{ path: "arch", content: "arm64\n" }]],
      });
      const store = fresh("store");
      assertExit(await ferry(["pull", ref, "--store", store, "-q"]), 0);
      const amd64 = await writeList(
        "arm-only.yaml",
        `images:\n  - {image: ${ref}, platform: linux/amd64}\n`,
      );
      const check = await ferry(["check", "-f", amd64, "--store", store]);
      assertExit(check, 1);
      assert.equal(lines(check.stdout)[0], `MISSING ${ref}`);
      const any = await writeList("arm-only-any.yaml", `images:\n  - ${ref}\n`);
      assertExit(await ferry(["check", "-f", any, "--store", store]), 0);

      const warmed = await ferry(["warm", "-f", amd64, "--store", store, "--json"]);
      const result = ndjson(warmed.stdout).find(
        (e) => e["event"] === "result" && e["image"] === ref,
      );
      assert.equal(result?.["state"], "failed", describeRun(warmed));
      assert.deepEqual(
        [(result?.["error"] as { code?: string } | undefined)?.code, warmed.code],
        ["FERRY_NO_MATCHING_PLATFORM", 3],
        describeRun(warmed),
      );
      assert.match(
        warmed.stderr + warmed.stdout,
        /is a single-platform image, not one for linux\/amd64/,
      );
    });
  });

  describe("ferry bootstrap", () => {
    test("warms the list, writes the ready file, exits 0", async () => {
      const ready = join(fresh("ready"), "ready.json");
      const list = await writeList("boot.yaml", `images:\n  - ${registry.host}/warm/app:v1\n`);
      const r = await ferry([
        "bootstrap",
        "-f",
        list,
        "--store",
        fresh("store"),
        "--ready-file",
        ready,
      ]);
      assertExit(r, 0);
      assert.match(r.stdout, /^READY in /m);
      const doc = JSON.parse(await readFile(ready, "utf8")) as {
        ready: boolean;
        images: unknown[];
      };
      assert.equal(doc.ready, true);
      assert.deepEqual(doc.images, [
        {
          image: `${registry.host}/warm/app:v1`,
          target: "store",
          state: "pulled",
          required: true,
          digest: app.manifestDigest,
        },
      ]);
    });

    test("a registry that comes up late is waited for, within the timeout", async () => {
      const port = await freePort();
      const ready = join(fresh("ready"), "ready.json");
      const list = await writeList(
        "late.yaml",
        `images:\n  - 127.0.0.1:${port}/warm/app:v1\n  - {image: 127.0.0.1:${port}/warm/nothing:v1, required: false}\n`,
      );
      const proc = startFerry([
        "bootstrap",
        "-f",
        list,
        "--store",
        fresh("store"),
        "--timeout",
        "30s",
        "--ready-file",
        ready,
      ]);
      // The registry comes up only once ferry has found it down and said it will retry.
      let said = "";
      proc.child.stdout?.on("data", (c: Buffer) => {
        said += c.toString("utf8");
      });
      await until("ferry retrying the absent registry", () => {
        assert.equal(
          proc.child.exitCode,
          null,
          `ferry exited before the registry came up: ${said}`,
        );
        return /^RETRYING in .*warm\/app:v1/m.test(said);
      });
      assert.equal(proc.child.exitCode, null, "still waiting");
      const server = await forward(port, registry.host);
      try {
        const r = await proc.result;
        assertExit(r, 0);
        assert.match(r.stdout, new RegExp(`PULLED 127\\.0\\.0\\.1:${port}/warm/app:v1`));
        assert.match(r.stdout, /^READY in /m);
        assert.equal(JSON.parse(await readFile(ready, "utf8")).ready, true);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    test("a registry that never comes: exit 5 after the timeout, saying what is missing", async () => {
      const port = await freePort();
      const ready = join(fresh("ready"), "ready.json");
      const list = await writeList("never.yaml", `127.0.0.1:${port}/warm/app:v1\n`);
      const started = Date.now();
      const r = await ferry([
        "bootstrap",
        "-f",
        list,
        "--store",
        fresh("store"),
        "--timeout",
        "3s",
        "--ready-file",
        ready,
      ]);
      assertExit(r, 5);
      assert.ok(Date.now() - started < 8000, `took ${Date.now() - started} ms`);
      assert.match(
        r.stderr,
        new RegExp(
          `not ready after 3s: 127\\.0\\.0\\.1:${port}/warm/app:v1 is not in store \\(.*\\)`,
        ),
      );
      await assert.rejects(readFile(ready), { code: "ENOENT" });
    });

    test("tells systemd through systemd-notify when NOTIFY_SOCKET is set, and says so when it cannot", async (t) => {
      const list = await writeList("notify.yaml", `images:\n  - ${registry.host}/warm/app:v1\n`);
      const store = fresh("store");
      const absent = await ferry(["bootstrap", "-f", list, "--store", store], {
        NOTIFY_SOCKET: join(work, "no-such.sock"),
        PATH: join(work, "empty-path"),
      });
      assertExit(absent, 0);
      assert.match(
        absent.stderr,
        /cannot tell systemd we are ready: systemd-notify is not installed/,
      );
      const receiver = await startNotifyReceiver(join(fresh("notify"), "notify.sock"));
      if (receiver === undefined) {
        t.skip("python3 or systemd-notify is not installed");
        return;
      }
      try {
        const r = await ferry(["bootstrap", "-f", list, "--store", store], {
          NOTIFY_SOCKET: receiver.path,
        });
        assertExit(r, 0);
        assert.equal(r.stderr, "");
        await receiver.received(/READY=1/);
      } finally {
        receiver.child.kill();
      }
    });
  });

  describe("runtime targets (a real containerd)", () => {
    const containerds: RunningContainerd[] = [];
    after(async () => {
      await Promise.all(containerds.map((c) => c.stop()));
    });

    test("the list's targets: each line says its target; required images pinned in containerd", async () => {
      const containerd = await startContainerd();
      containerds.push(containerd);
      const list = await writeList(
        "two-targets.yaml",
        `images:\n  - ${registry.host}/warm/app:v1\n  - {image: ${registry.host}/warm/tool:v1, required: false}\ntargets: [store, containerd]\n`,
      );
      const args = [
        "-f",
        list,
        "--store",
        fresh("store"),
        "--cri-endpoint",
        `unix://${containerd.socket}`,
      ];
      const r = await ferry(["warm", ...args]);
      assertExit(r, 0);
      const out = lines(r.stdout);
      for (const target of ["store", "containerd"]) {
        for (const image of ["app", "tool"]) {
          const line = `${target}: PULLED ${registry.host}/warm/${image}:v1 (`;
          assert.ok(
            out.some((l) => l.startsWith(line)),
            `${line}\n${describeRun(r)}`,
          );
        }
      }
      const images = (await containerd.ctr(["-n", "k8s.io", "images", "ls"])).stdout;
      const labelsOf = (name: string) =>
        images.split("\n").find((l) => l.startsWith(`${registry.host}/warm/${name}:v1 `)) ?? "";
      assert.match(labelsOf("app"), /io\.cri-containerd\.pinned=pinned/);
      assert.doesNotMatch(labelsOf("tool"), /pinned=pinned/);
      const check = await ferry(["check", ...args, "--target", "containerd"]);
      assertExit(check, 0);
      assert.match(check.stdout, new RegExp(`^PRESENT ${registry.host}/warm/app:v1$`, "m"));
    });

    test("bootstrap waits for a runtime that starts late", async () => {
      const socket = join(fresh("late-cri"), "containerd.sock");
      await mkdir(join(socket, ".."), { recursive: true });
      const list = await writeList("late-cri.yaml", `${registry.host}/warm/app:v1\n`);
      const proc = startFerry([
        "bootstrap",
        "-f",
        list,
        "--target",
        "containerd",
        "--cri-endpoint",
        `unix://${socket}`,
        "--timeout",
        "30s",
      ]);
      // Start containerd only once ferry says it is waiting for it (however slowly ferry starts).
      let said = "";
      proc.child.stdout?.on("data", (c: Buffer) => {
        said += c.toString("utf8");
      });
      await until("ferry waiting for containerd", () => {
        assert.equal(
          proc.child.exitCode,
          null,
          `ferry exited before the runtime appeared: ${said}`,
        );
        return /^WAITING for containerd/m.test(said);
      });
      const containerd = await startContainerd();
      containerds.push(containerd);
      await symlink(containerd.socket, socket);
      const r = await proc.result;
      assertExit(r, 0);
      assert.match(r.stdout, /^WAITING for containerd/m);
      assert.match(r.stdout, new RegExp(`^PULLED ${registry.host}/warm/app:v1 `, "m"));
      assert.match(r.stdout, /^READY in /m);
    });
  });
});

/** A unix datagram socket that answers like systemd (closes the barrier fds); Node cannot bind one. */
async function startNotifyReceiver(
  path: string,
): Promise<
  { path: string; child: ChildProcess; received(message: RegExp): Promise<void> } | undefined
> {
  await mkdir(join(path, ".."), { recursive: true });
  const script = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("listening", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64))
    print(msg.decode(), flush=True)
    for _, _, data in anc:
        fds = array.array("i"); fds.frombytes(data[: len(data) - len(data) % 4])
        for fd in fds: os.close(fd)
`;
  const child = spawn("python3", ["-c", script, path], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const started = await new Promise<boolean>((resolve) => {
    child.once("error", () => resolve(false));
    child.stdout.once("data", () => resolve(true));
  });
  if (!started) return undefined;
  return {
    path,
    child,
    async received(message) {
      // The receiver prints a message just before it releases ferry's barrier: read on until it is in.
      await until(`${message} at the notify socket`, () => message.test(out), 10_000);
    },
  };
}
