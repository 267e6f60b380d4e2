// `ferry snapshotter` as containerd's proxy snapshotter plugin, against a real containerd 1.6,
// registry and runc: a plain gzip image unpacked through it, eStargz images (converted by ferry
// and by ctr-remote) pulled with `ctr-remote image rpull` and run without their layers ever
// being downloaded whole, a mixed image, a registry that lies about a chunk, restarts of ferry
// and of containerd, and containerd's garbage collection.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parseReference } from "../../src/reference/index.ts";
import { CriTarget } from "../../src/runtime/index.ts";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { type FileSpec, pushImage, seededBytes } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import {
  fuseMountsUnder,
  proxyPluginConfig,
  type RunningSnapshotter,
  startSnapshotter,
} from "../fixtures/snapshotter.ts";
import { describeRun, ferry, isolatedEnv, removeDir, tempDir, until } from "./cli.ts";

const execFileAsync = promisify(execFile);
const BIG = 2 * 1024 * 1024 + 7;
const SCRIPT = "cat /etc/motd; ls /opaque; ls /; sha256sum /data/big.bin | cut -c1-64";

interface Manifest {
  config: { digest: string };
  layers: Array<{ digest: string; size: number; mediaType: string }>;
}

async function sha256Of(name: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  for await (const part of seededBytes(name, size)) hash.update(part);
  return hash.digest("hex");
}

describe("ferry snapshotter that cannot start", () => {
  test("says why, exits with the usage code, and leaves nothing mounted", async () => {
    const home = await tempDir("snapshotter-bad");
    try {
      const file = join(home, "a-file");
      await writeFile(file, "");
      const r = await ferry(
        [
          "snapshotter",
          "--socket",
          join(file, "ferry.sock"),
          "--root",
          join(home, "root"),
          "--store",
          join(home, "store"),
        ],
        isolatedEnv(home),
      );
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /cannot .*a-file/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual(await fuseMountsUnder(join(home, "root")), []);
    } finally {
      for (const m of await fuseMountsUnder(join(home, "root")))
        await execFileAsync("umount", ["-l", m]);
      await removeDir(home);
    }
  });
});

describe("ferry snapshotter on a socket path too long for a unix socket", () => {
  test("says so in its own words only, and exits with the usage code", async () => {
    const home = await tempDir("snapshotter-long");
    const dir = join(home, "d".repeat(120));
    try {
      const r = await ferry(
        [
          "snapshotter",
          "--socket",
          join(dir, "ferry.sock"),
          "--root",
          join(home, "root"),
          "--store",
          join(home, "store"),
        ],
        isolatedEnv(home),
      );
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /cannot listen on .*ferry\.sock/);
      assert.match(r.stderr, /at most 107/);
      assert.doesNotMatch(r.stderr, /^E /m, "no gRPC library log lines");
      assert.deepEqual(await fuseMountsUnder(join(home, "root")), []);
    } finally {
      for (const m of await fuseMountsUnder(join(home, "root")))
        await execFileAsync("umount", ["-l", m]);
      await removeDir(home);
    }
  });
});

describe("ferry snapshotter", { timeout: 240_000 }, () => {
  let registry: RunningRegistry;
  let liar: RunningProxy;
  let containerd: RunningContainerd;
  let snapshotter: RunningSnapshotter;
  let home: string;
  let plainRef: string;
  let ferryRef: string;
  let ctrRemoteRef: string;
  let mixedRef: string;
  let expected: string;
  /** Layers of the liar image whose range reads the proxy answers with garbage, once lying. */
  const lieAbout = new Set<string>();
  let lying = false;
  let runs = 0;
  const env = () => isolatedEnv(home);

  const ctr = (args: string[]) => containerd.ctr(args);
  const ctrRemote = (args: string[]) =>
    execFileAsync("ctr-remote", ["-a", containerd.socket, ...args], { maxBuffer: 16 << 20 });
  /** `ctr run --rm --snapshotter ferry REF ID sh -c SCRIPT`: its stdout. */
  async function run(ref: string, script = SCRIPT): Promise<string> {
    const id = `c${++runs}`;
    const r = await ctr([
      "run",
      "--rm",
      "--snapshotter",
      "ferry",
      ref,
      id,
      "/bin/sh",
      "-c",
      script,
    ]);
    return r.stdout;
  }
  /** containerd reconnects to a restarted plugin with a backoff (up to 3 s): wait for it. */
  async function reachable(): Promise<void> {
    await until("containerd to reach ferry's snapshotter again", () =>
      ctr(["snapshots", "--snapshotter", "ferry", "ls"]).then(
        () => true,
        () => false,
      ),
    );
  }
  async function manifestOf(host: string, ref: string): Promise<Manifest> {
    const [name, tag] = ref.slice(host.length + 1).split(":");
    const res = await fetch(`http://${host}/v2/${name}/manifests/${tag}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    assert.equal(res.status, 200);
    return (await res.json()) as Manifest;
  }
  /** The registry's answers to GETs of these layers: statuses and bytes. */
  async function layerGets(manifest: Manifest) {
    const digests = new Set(manifest.layers.map((l) => l.digest));
    return (await registry.blobGets()).filter((g) => digests.has(g.digest));
  }

  before(async () => {
    home = await tempDir("snapshotter");
    registry = await startRegistry();
    liar = await startProxy({
      target: registry.host,
      answer: ({ method, path, range }) => {
        const layer = [...lieAbout].find((d) => path.endsWith(`/blobs/${d}`));
        if (!lying || method !== "GET" || range === undefined || layer === undefined)
          return undefined;
        const [start, end] = (/^bytes=(\d+)-(\d+)$/.exec(range) ?? []).slice(1).map(Number);
        const length = (end ?? 0) - (start ?? 0) + 1;
        return {
          status: 206,
          headers: {
            "content-range": `bytes ${start}-${end}/*`,
            "content-type": "application/octet-stream",
          },
          body: Buffer.alloc(length, 0x5a),
        };
      },
    });
    snapshotter = await startSnapshotter(home, ["--store", join(home, "store")], env());
    // CRI as kubelet drives it: ferry for every pull, with the labels remote snapshotters need.
    const cri = `[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "ferry"\n  disable_snapshot_annotations = false\n`;
    containerd = await startContainerd({
      extraConfig: proxyPluginConfig(snapshotter.socket) + cri,
    });

    const busybox = await busyboxLayer(["sh", "cat", "ls", "sha256sum", "cut", "sleep"]);
    const lower: FileSpec[] = [
      ...busybox,
      { path: "etc", type: "dir" },
      { path: "etc/motd", content: "lower motd\n" },
      { path: "old.txt", content: "whited out\n" },
      { path: "opaque", type: "dir" },
      { path: "opaque/lower1", content: "hidden by the opaque dir\n" },
      { path: "data", type: "dir" },
      { path: "data/big.bin", size: BIG },
      { path: "data/unread.bin", size: BIG, seed: "never read" },
    ];
    const upper: FileSpec[] = [
      { path: ".wh.old.txt", content: "" },
      { path: "opaque", type: "dir" },
      { path: "opaque/.wh..wh..opq", content: "" },
      { path: "opaque/upper1", content: "only this survives\n" },
      { path: "etc", type: "dir" },
      { path: "etc/motd", content: "upper motd\n" },
    ];
    const repo = "snap/app";
    plainRef = `${registry.host}/${repo}:plain`;
    ferryRef = `${registry.host}/${repo}:ferry-esgz`;
    ctrRemoteRef = `${registry.host}/${repo}:ctr-remote-esgz`;
    mixedRef = `${registry.host}/${repo}:mixed`;
    await pushImage(registry.host, repo, "plain", { layers: [lower, upper] });
    // The files the container reads first: prefetched as soon as their layer is shown.
    const prioritized = join(home, "prioritized.txt");
    await writeFile(prioritized, "data/big.bin\n");
    const converted = await ferry(
      [
        "convert",
        "--estargz",
        "--prioritize",
        prioritized,
        "--store",
        join(home, "convert"),
        plainRef,
        ferryRef,
      ],
      env(),
    );
    assert.equal(converted.code, 0, describeRun(converted));
    // ctr-remote converts in a namespace of its own, so the image it leaves is not the one rpull makes.
    await ctrRemote(["-n", "convert", "images", "pull", "--plain-http", plainRef]);
    await ctrRemote([
      "-n",
      "convert",
      "images",
      "convert",
      "--estargz",
      "--oci",
      plainRef,
      ctrRemoteRef,
    ]);
    await ctrRemote(["-n", "convert", "images", "push", "--plain-http", ctrRemoteRef]);
    await ctr(["-n", "convert", "images", "rm", "--sync", plainRef, ctrRemoteRef]);
    expected = `upper motd\nupper1\nbin\ndata\ndev\netc\nopaque\nproc\nrun\nsys\n${await sha256Of("data/big.bin", BIG)}\n`;
  });

  after(async () => {
    await snapshotter?.stop().catch(() => undefined);
    await Promise.all([containerd?.stop(), registry?.stop(), liar?.stop()]);
    await removeDir(home);
  });

  test("a plain gzip image is unpacked into ferry's snapshots by containerd and runs", async () => {
    await ctr(["images", "pull", "--plain-http", "--snapshotter", "ferry", plainRef]);
    assert.equal(await run(plainRef), expected);
    const { stdout } = await ctr(["snapshots", "--snapshotter", "ferry", "ls"]);
    assert.equal(stdout.trim().split("\n").length - 1, 2, stdout);
  });

  for (const [what, ref] of [
    ["ferry convert", () => ferryRef],
    ["ctr-remote image convert", () => ctrRemoteRef],
  ] as const) {
    test(`rpull of an image converted by ${what}: layers mounted lazily, only Range requests, and it runs`, async () => {
      const manifest = await manifestOf(registry.host, ref());
      await ctrRemote(["images", "rpull", "--plain-http", "--snapshotter", "ferry", ref()]);
      assert.equal(await run(ref()), expected);
      if (what === "ferry convert")
        assert.match(snapshotter.log(), /snapshot \d+: prefetched 1 files \(1 chunks/);
      const gets = await layerGets(manifest);
      assert.ok(gets.length > 0, "the layers were read by ranges");
      assert.deepEqual(
        gets.filter((g) => g.status !== 206),
        [],
        "no layer was downloaded whole",
      );
      const layerBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
      const fetched = gets.reduce((n, g) => n + g.bytes, 0);
      assert.ok(
        fetched < layerBytes - BIG,
        `fetched ${fetched} of ${layerBytes}: data/unread.bin was not read`,
      );
      // Every lazy layer is a directory of ferry's one FUSE filesystem.
      assert.deepEqual(await fuseMountsUnder(snapshotter.root), [join(snapshotter.root, "lazy")]);
    });
  }

  test("a mixed image: its eStargz layer is mounted lazily, its plain layer unpacked", async () => {
    const lazy = await manifestOf(registry.host, ferryRef);
    const plain = await manifestOf(registry.host, plainRef);
    const configOf = async (m: Manifest) =>
      (await (
        await fetch(`http://${registry.host}/v2/snap/app/blobs/${m.config.digest}`)
      ).json()) as {
        rootfs: { diff_ids: string[] };
      };
    const [lazyConfig, plainConfig] = await Promise.all([configOf(lazy), configOf(plain)]);
    const config = Buffer.from(
      JSON.stringify({
        ...plainConfig,
        rootfs: {
          type: "layers",
          diff_ids: [lazyConfig.rootfs.diff_ids[0], plainConfig.rootfs.diff_ids[1]],
        },
      }),
    );
    const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
    const upload = await fetch(`http://${registry.host}/v2/snap/app/blobs/uploads/`, {
      method: "POST",
    });
    const location = new URL(upload.headers.get("location") ?? "", `http://${registry.host}`);
    location.searchParams.set("digest", configDigest);
    assert.equal((await fetch(location, { method: "PUT", body: config })).status, 201);
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: configDigest,
        size: config.length,
      },
      layers: [lazy.layers[0], plain.layers[1]],
    };
    const put = await fetch(`http://${registry.host}/v2/snap/app/manifests/mixed`, {
      method: "PUT",
      headers: { "content-type": manifest.mediaType },
      body: JSON.stringify(manifest),
    });
    assert.equal(put.status, 201);
    await ctrRemote(["images", "rpull", "--plain-http", "--snapshotter", "ferry", mixedRef]);
    assert.equal(await run(mixedRef), expected);
    assert.match(snapshotter.log(), new RegExp(`layer ${plain.layers[1]?.digest} is not lazy`));
  });

  test("a registry that lies about a chunk: the read fails with EIO and nothing unverified reaches the container", async () => {
    const secret = "the real secret\n";
    await pushImage(registry.host, "snap/liar", "plain", {
      layers: [await busyboxLayer(["sh", "cat"]), [{ path: "secret", content: secret }]],
    });
    const ref = `${liar.host}/snap/liar:esgz`;
    const converted = await ferry(
      [
        "convert",
        "--estargz",
        "--store",
        join(home, "convert"),
        `${registry.host}/snap/liar:plain`,
        `${registry.host}/snap/liar:esgz`,
      ],
      env(),
    );
    assert.equal(converted.code, 0, describeRun(converted));
    const manifest = await manifestOf(registry.host, `${registry.host}/snap/liar:esgz`);
    lieAbout.add(manifest.layers[1]?.digest ?? "");
    await ctrRemote(["images", "rpull", "--plain-http", "--snapshotter", "ferry", ref]);
    lying = true;
    const out = await run(ref, "cat /secret; echo status=$?");
    assert.doesNotMatch(out, /real secret|ZZZZ/);
    assert.match(out, /status=1/);
    assert.match(snapshotter.log(), /read of \/secret failed \(EIO\): .*chunk/);
    lying = false;
    assert.equal(await run(ref, "cat /secret"), secret);
  });

  test("a layer whose footer or TOC does not verify is unpacked whole, with a warning", async () => {
    const secret = "read whole\n";
    await pushImage(registry.host, "snap/liar", "plain2", {
      layers: [await busyboxLayer(["sh", "cat"]), [{ path: "secret", content: secret }]],
    });
    const plain = `${registry.host}/snap/liar:plain2`;
    const converted = await ferry(
      [
        "convert",
        "--estargz",
        "--store",
        join(home, "convert"),
        plain,
        `${registry.host}/snap/liar:esgz2`,
      ],
      env(),
    );
    assert.equal(converted.code, 0, describeRun(converted));
    const manifest = await manifestOf(registry.host, `${registry.host}/snap/liar:esgz2`);
    const layer = manifest.layers[1]?.digest ?? "";
    lieAbout.add(layer);
    lying = true;
    try {
      const ref = `${liar.host}/snap/liar:esgz2`;
      await ctrRemote(["images", "rpull", "--plain-http", "--snapshotter", "ferry", ref]);
      assert.match(
        snapshotter.log(),
        new RegExp(`warning: layer ${layer} is unpacked whole instead: `),
      );
      assert.ok(
        (await registry.blobGets()).some((g) => g.digest === layer && g.status === 200),
        "containerd downloaded the layer itself",
      );
      assert.equal(await run(ref, "cat /secret"), secret);
    } finally {
      lying = false;
    }
  });

  test("the CRI pull kubelet uses: containerd's CRI plugin prepares eStargz layers through ferry, which mounts them lazily", async () => {
    await pushImage(registry.host, "snap/cri", "plain", {
      layers: [await busyboxLayer(["sh", "cat"]), [{ path: "etc/motd", content: "via CRI\n" }]],
    });
    const plain = `${registry.host}/snap/cri:plain`;
    const lazy = `${registry.host}/snap/cri:esgz`;
    const converted = await ferry(
      ["convert", "--estargz", "--store", join(home, "convert"), plain, lazy],
      env(),
    );
    assert.equal(converted.code, 0, describeRun(converted));
    const manifest = await manifestOf(registry.host, lazy);
    const target = new CriTarget({ endpoint: `unix://${containerd.socket}` });
    try {
      assert.equal((await target.pull(parseReference(lazy))).present, true);
    } finally {
      await target.close();
    }
    for (const layer of manifest.layers)
      assert.match(snapshotter.log(), new RegExp(`layer ${layer.digest} mounted lazily`));
    const gets = await layerGets(manifest);
    assert.ok(gets.length > 0);
    assert.deepEqual(
      gets.filter((g) => g.status !== 206),
      [],
      "no layer was downloaded whole",
    );
    const { stdout } = await ctr(["-n", "k8s.io", "images", "ls", "-q"]);
    assert.ok(stdout.includes(lazy), stdout);
  });

  test("restarts of ferry and of containerd: the lazy layers are mounted again and run", async () => {
    await snapshotter.restart();
    assert.match(snapshotter.log(), /mounted again/);
    await reachable();
    assert.equal(await run(ferryRef), expected);
    await containerd.restart();
    assert.equal(await run(ctrRemoteRef), expected);
  });

  test("removing the images lets containerd's GC remove every snapshot, lazy layer and directory", async () => {
    for (const namespace of ["default", "k8s.io"]) {
      const { stdout } = await ctr(["-n", namespace, "images", "ls", "-q"]);
      await ctr(["-n", namespace, "images", "rm", "--sync", ...stdout.trim().split("\n")]);
    }
    const { stdout: left } = await ctr(["snapshots", "--snapshotter", "ferry", "ls"]);
    assert.equal(left.trim().split("\n").length, 1, left);
    assert.deepEqual(await readdir(join(snapshotter.root, "snapshots")), []);
    assert.deepEqual(await readdir(join(snapshotter.root, "lazy")), []);
    const { result, leftMounted } = await snapshotter.stop();
    assert.equal(result.code, 0, describeRun(result));
    assert.deepEqual(leftMounted, [], "ferry unmounts its filesystem when it stops");
  });
});
