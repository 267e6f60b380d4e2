// `ferry mount` against a real registry: an image converted by the reference tool
// (`ctr-remote image convert --estargz`) mounted with FUSE, compared with the same image
// unpacked by a real containerd, run with runc on an overlay, and read while the registry
// disappears or a proxy corrupts what it sends.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, open, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import { mountOverlay, runContainer } from "../../src/lazy/index.ts";
import { busyboxLayer } from "../fixtures/busybox.ts";
import {
  forceUnmount,
  isMountPoint,
  type RunningMount,
  startMount,
} from "../fixtures/fuse-mount.ts";
import { MediaType, pushLayout, seededBytes } from "../fixtures/images.ts";
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { describeRun, ferry, isolatedEnv, removeDir, tempDir } from "./cli.ts";
import { until } from "../fixtures/until.ts";

const execFileAsync = promisify(execFile);
const MTIME = new Date("2024-02-03T04:05:06Z");
const BIG = 9 * 1024 * 1024 + 123;
const CMD = ["/bin/sh", "-c", "cat /etc/motd; ls /data"];

interface TarEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "fifo" | "character-device";
  mode?: number;
  uid?: number;
  gid?: number;
  content?: Buffer | string;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records, e.g. `SCHILY.xattr.user.k` for an extended attribute */
  pax?: Record<string, string>;
}

/** A gzip tar layer with exactly these entries, in this order. */
async function layer(entries: TarEntry[]): Promise<{ gz: Buffer; diffId: string }> {
  const pack = tar.pack();
  const tarParts: Buffer[] = [];
  const gzParts: Buffer[] = [];
  const gzip = createGzip();
  pack.on("data", (b: unknown) => {
    tarParts.push(b as Buffer);
    gzip.write(b as Buffer);
  });
  const ended = new Promise<void>((resolve) => pack.on("end", () => resolve()));
  for (const e of entries) {
    const type = e.type ?? "file";
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: MTIME,
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      ...(e.devmajor === undefined ? {} : { devmajor: e.devmajor, devminor: e.devminor ?? 0 }),
      ...(e.pax === undefined ? {} : { pax: e.pax }),
    };
    if (type !== "file") {
      pack.entry(header);
      continue;
    }
    let content = e.content === undefined ? undefined : Buffer.from(e.content);
    if (content === undefined) {
      const parts: Buffer[] = [];
      for await (const p of seededBytes(e.name, e.size ?? 0)) parts.push(p);
      content = Buffer.concat(parts);
    }
    pack.entry({ ...header, size: content.length }, content);
  }
  pack.finalize();
  await ended;
  const gzDone = new Promise<void>((resolve) => gzip.on("end", () => resolve()));
  gzip.on("data", (b: Buffer) => gzParts.push(b));
  gzip.end();
  await gzDone;
  return { gz: Buffer.concat(gzParts), diffId: sha256(Buffer.concat(tarParts)) };
}

function sha256(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

async function writeLayout(
  dir: string,
  tag: string,
  layers: Array<{ gz: Buffer; diffId: string }>,
) {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await writeFile(join(blobs, d.slice(7)), b);
    return d;
  };
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin", "GREETING=hello"], Cmd: CMD, WorkingDir: "/data" },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: await put(config), size: config.length },
      layers: await Promise.all(
        layers.map(async (l) => ({
          mediaType: MediaType.ociLayerGzip,
          digest: await put(l.gz),
          size: l.gz.length,
        })),
      ),
    }),
  );
  const digest = await put(manifest);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaType.ociManifest,
          digest,
          size: manifest.length,
          annotations: { "org.opencontainers.image.ref.name": tag },
        },
      ],
    }),
  );
}

/** A TCP forwarder whose target can be switched (or cut) while a mount uses it. */
class Forwarder {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** "host:port", "stall" (accept and never answer) or undefined (refuse). */
  target: string | undefined;
  port = 0;

  constructor(target: string) {
    this.target = target;
    this.#server = createServer((client) => {
      this.#sockets.add(client);
      client.on("close", () => this.#sockets.delete(client));
      client.on("error", () => undefined);
      if (this.target === undefined) {
        client.destroy();
        return;
      }
      if (this.target === "stall") return; // accepted, never answered
      const [host, port] = this.target.split(":");
      const upstream = connect(Number(port), host ?? "127.0.0.1");
      this.#sockets.add(upstream);
      upstream.on("close", () => this.#sockets.delete(upstream));
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  /** Switches where new connections go; open ones are cut. */
  switch(target: string | undefined): void {
    this.target = target;
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.switch(undefined);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

interface Seen {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  content?: string;
  link?: string;
  rdev?: number;
  ino: number;
  nlink: number;
}

/** Every path below `root` with what a comparison needs; hard links as groups of paths. */
async function walk(root: string): Promise<{ files: Map<string, Seen>; links: string[][] }> {
  const files = new Map<string, Seen>();
  const visit = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const full = join(root, path);
      const st = await lstat(full);
      const seen: Seen = {
        type: st.isDirectory()
          ? "dir"
          : st.isSymbolicLink()
            ? "symlink"
            : st.isFile()
              ? "file"
              : st.isFIFO()
                ? "fifo"
                : st.isCharacterDevice()
                  ? "char"
                  : "other",
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        size: st.isDirectory() ? 0 : st.size,
        mtime: st.isDirectory() ? 0 : Math.floor(st.mtimeMs / 1000),
        ino: st.ino,
        nlink: st.isDirectory() ? 0 : st.nlink,
      };
      if (st.isFile()) seen.content = sha256(await readFile(full));
      if (st.isSymbolicLink()) seen.link = await readlink(full);
      if (st.isCharacterDevice()) seen.rdev = st.rdev;
      files.set(path, seen);
      if (st.isDirectory()) await visit(path);
    }
  };
  await visit("");
  const byIno = new Map<number, string[]>();
  for (const [path, s] of files)
    if (s.type === "file") byIno.set(s.ino, [...(byIno.get(s.ino) ?? []), path]);
  const links = [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort());
  return { files, links };
}

/** The `user.*` extended attributes below `root` (hex values), by path; Node has no xattr API. */
async function userXattrs(root: string): Promise<Record<string, Record<string, string>>> {
  const script = [
    "import json, os, sys",
    "root = sys.argv[1]; out = {}",
    "for d, dirs, files in os.walk(root):",
    "    for n in dirs + files:",
    "        p = os.path.join(d, n)",
    "        a = {k: os.getxattr(p, k, follow_symlinks=False).hex() for k in os.listxattr(p, follow_symlinks=False) if k.startswith('user.')}",
    "        if a: out[os.path.relpath(p, root)] = a",
    "print(json.dumps(out, sort_keys=True))",
  ].join("\n");
  const { stdout } = await execFileAsync("python3", ["-c", script, root]);
  return JSON.parse(stdout) as Record<string, Record<string, string>>;
}

function comparable(files: Map<string, Seen>): Record<string, Omit<Seen, "ino">> {
  const out: Record<string, Omit<Seen, "ino">> = {};
  for (const [path, { ino: _ino, ...rest }] of files) out[path] = rest;
  return out;
}

/** Whether reading the file fails with EIO (and not with anything else, nor succeeds). */
async function readFails(path: string): Promise<string> {
  try {
    await readFile(path);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
  return "read succeeded";
}

describe("ferry mount", { timeout: 180_000 }, () => {
  let registry: RunningRegistry;
  let containerd: RunningContainerd;
  let proxy: RunningProxy;
  let forwarder: Forwarder;
  let home: string;
  let plainRef: string;
  let lazyRef: string;
  /** The same image converted by `ferry convert --estargz` instead of ctr-remote. */
  let ferryRef: string;
  let bigHash: string;
  const mounts: RunningMount[] = [];
  const env = () => isolatedEnv(home, { FERRY_RUN_DIR: join(home, "run") });
  /** The image's reference through the forwarder (whose target the tests switch). */
  const viaForwarder = () => `127.0.0.1:${forwarder.port}/mount/app:esgz`;

  async function mount(name: string, args: string[] = [], ref = viaForwarder()) {
    const dir = join(home, name);
    await mkdir(dir, { recursive: true });
    const m = await startMount(ref, dir, ["--store", join(home, `store-${name}`), ...args], env());
    mounts.push(m);
    return m;
  }

  before(async () => {
    [registry, containerd, home] = await Promise.all([
      startRegistry(),
      startContainerd(),
      tempDir("mount"),
    ]);
    proxy = await startProxy({ target: registry.host, corruptBlobs: true });
    forwarder = new Forwarder(registry.host);
    await forwarder.listen();
    plainRef = `${registry.host}/mount/app:plain`;
    lazyRef = `${registry.host}/mount/app:esgz`;
    ferryRef = `${registry.host}/mount/app:ferry-esgz`;
    const busybox = await busyboxLayer(["sh", "cat", "ls", "echo"]);
    const base: TarEntry[] = [
      ...busybox.map((f): TarEntry => {
        const name = f.type === "dir" ? `${f.path}/` : f.path;
        if (f.type === "dir") return { name, type: "directory" };
        if (f.type === "symlink") return { name, type: "symlink", linkname: f.linkname ?? "" };
        return { name, content: f.content as Buffer, mode: f.mode ?? 0o644 };
      }),
      { name: "etc/", type: "directory" },
      { name: "etc/motd", content: "lower motd\n" },
      { name: "etc/prio.txt", content: "prefetched before anyone asks\n" },
      { name: "data/", type: "directory" },
      { name: "data/big.bin", size: BIG },
      { name: "data/hard-a", content: "one inode, two names\n", mode: 0o640, uid: 7, gid: 8 },
      { name: "data/hard-b", type: "link", linkname: "data/hard-a" },
      { name: "data/empty", content: "" },
      {
        name: "secret/",
        type: "directory",
        mode: 0o700,
        uid: 1000,
        gid: 1000,
        pax: { "SCHILY.xattr.user.kind": "vault" },
      },
      {
        name: "secret/key",
        content: "s3cret\n",
        mode: 0o600,
        uid: 1000,
        gid: 1000,
        pax: { "SCHILY.xattr.user.owner": "tenant-42" },
      },
      { name: "usr/", type: "directory" },
      { name: "usr/bin/", type: "directory" },
      { name: "usr/bin/suid", content: "#!/bin/sh\n", mode: 0o4755 },
      { name: "gone/", type: "directory" },
      { name: "gone/file", content: "deleted by the upper layer\n" },
      { name: "old.txt", content: "whited out\n" },
      { name: "opaque/", type: "directory" },
      { name: "opaque/lower1", content: "hidden by the opaque dir\n" },
      { name: "opaque/sub/", type: "directory" },
      { name: "opaque/sub/x", content: "also hidden\n" },
      { name: "dev/", type: "directory" },
      { name: "dev/fifo", type: "fifo", mode: 0o600 },
      { name: "dev/zero2", type: "character-device", devmajor: 1, devminor: 5, mode: 0o666 },
    ];
    const upper: TarEntry[] = [
      { name: ".wh.old.txt" },
      { name: ".wh.gone" },
      { name: "opaque/", type: "directory", mode: 0o750 },
      { name: "opaque/.wh..wh..opq" },
      { name: "opaque/upper1", content: "only this survives\n" },
      { name: "etc/", type: "directory" },
      { name: "etc/motd", content: "upper motd\n", mode: 0o444 },
      { name: "etc/abs", type: "symlink", linkname: "/etc/motd" },
      { name: "etc/rel", type: "symlink", linkname: "../data/new.txt" },
      { name: "data/", type: "directory" },
      { name: "data/new.txt", content: "added on top\n" },
    ];
    const parts: Buffer[] = [];
    for await (const p of seededBytes("data/big.bin", BIG)) parts.push(p);
    bigHash = sha256(Buffer.concat(parts));
    const layout = join(home, "layout");
    await writeLayout(layout, "plain", [await layer(base), await layer(upper)]);
    await pushLayout(layout, "plain", plainRef);
    const record = join(home, "prio.json");
    const prio = ["etc/prio.txt", "data/hard-a", "secret/key"];
    await writeFile(record, prio.map((path) => `${JSON.stringify({ path })}\n`).join(""));
    const ctrRemote = (args: string[]) =>
      execFileAsync("ctr-remote", ["-a", containerd.socket, ...args], { maxBuffer: 16 << 20 });
    await ctrRemote(["images", "pull", "--plain-http", plainRef]);
    await ctrRemote([
      "images",
      "convert",
      "--estargz",
      "--oci",
      "--estargz-record-in",
      record,
      "--estargz-chunk-size",
      String(4 << 20),
      plainRef,
      lazyRef,
    ]);
    await ctrRemote(["images", "push", "--plain-http", lazyRef]);
    const converted = await ferry(
      ["convert", "--estargz", "--store", join(home, "store-convert"), plainRef, ferryRef],
      env(),
    );
    assert.equal(converted.code, 0, describeRun(converted));
  });

  after(async () => {
    for (const m of mounts) await m.stop().catch(() => undefined);
    await forwarder?.close();
    await Promise.all([registry?.stop(), containerd?.stop(), proxy?.stop()]);
    await removeDir(home);
  });

  test("presents the merged image exactly as containerd unpacks it (converted by ctr-remote and by ferry convert)", async () => {
    // ferry convert → ferry mount is the round trip users run; ctr-remote is the reference converter.
    const mine = [
      await mount("compare", ["--no-prefetch"], lazyRef),
      await mount("compare-ferry", ["--no-prefetch"], ferryRef),
    ];
    const unpacked = join(home, "unpacked");
    await mkdir(unpacked);
    await containerd.ctr(["images", "pull", "--plain-http", plainRef]);
    await containerd.ctr(["images", "mount", plainRef, unpacked]);
    try {
      const theirs = await walk(unpacked);
      const theirXattrs = await userXattrs(unpacked);
      // What the comparison covers, so a broken fixture cannot make it vacuous.
      assert.deepEqual(theirXattrs, {
        secret: { "user.kind": Buffer.from("vault").toString("hex") },
        "secret/key": { "user.owner": Buffer.from("tenant-42").toString("hex") },
      });
      for (const m of mine) {
        const seen = await walk(m.dir);
        assert.deepEqual(comparable(seen.files), comparable(theirs.files), m.dir);
        assert.deepEqual(seen.links, theirs.links);
        assert.deepEqual(await userXattrs(m.dir), theirXattrs, m.dir);
        assert.deepEqual(seen.links, [["data/hard-a", "data/hard-b"]]);
        assert.equal(seen.files.get("data/big.bin")?.content, bigHash);
        assert.equal(seen.files.get("etc/abs")?.link, "/etc/motd");
        assert.equal((seen.files.get("usr/bin/suid")?.mode ?? 0) & 0o7777, 0o4755);
        assert.equal(seen.files.get("secret/key")?.uid, 1000);
        assert.equal(seen.files.get("secret/key")?.gid, 1000);
        assert.equal(seen.files.get("dev/fifo")?.type, "fifo");
        assert.equal(seen.files.get("dev/zero2")?.type, "char");
        for (const hidden of ["old.txt", "gone", "opaque/lower1", "opaque/sub"])
          assert.equal(seen.files.has(hidden), false, hidden);
        assert.equal(await readFile(join(m.dir, "etc/rel"), "utf8"), "added on top\n");
      }
    } finally {
      await containerd.ctr(["images", "unmount", unpacked]).catch(() => forceUnmount(unpacked));
    }
  });

  test("mounts nosuid,nodev: the image's setuid files and device nodes grant nothing", async () => {
    const m = await mount("nosuid", ["--no-prefetch"], lazyRef);
    const info = await readFile("/proc/self/mountinfo", "utf8");
    const line = info.split("\n").find((l) => l.split(" ")[4] === m.dir);
    const options = (line?.split(" ")[5] ?? "").split(",");
    assert.ok(options.includes("nosuid") && options.includes("nodev"), line);
    // The image's char device 1:5 (/dev/zero) is shown but cannot be opened through the mount.
    assert.equal((await lstat(join(m.dir, "dev/zero2"))).isCharacterDevice(), true);
    const opened = await open(join(m.dir, "dev/zero2"), "r").then(
      async (h) => {
        await h.close();
        return "opened";
      },
      (err: NodeJS.ErrnoException) => err.code,
    );
    assert.equal(opened, "EACCES");
  });

  test("runc runs the image's command on an overlay over the mount", async () => {
    const m = await mount("runc", [], lazyRef);
    const { RegistryClient } = await import("../../src/registry/index.ts");
    const { openMountImage } = await import("../../src/lazy/index.ts");
    const client = new RegistryClient({
      settings: () => ({ mirrors: [], plainHttp: true }),
    });
    const image = await openMountImage({
      registry: client,
      repository: { domain: registry.host, path: "mount/app" },
      reference: "esgz",
    });
    await client.close();
    assert.deepEqual(image.config.cmd, CMD);
    const r = await runContainer({ lower: m.dir, config: image.config, parent: home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "upper motd\nbig.bin\nempty\nhard-a\nhard-b\nnew.txt\n");
    const w = await runContainer({
      lower: m.dir,
      config: image.config,
      parent: home,
      args: ["/bin/sh", "-c", 'echo "$GREETING from $(pwd)" > /etc/motd && cat /etc/motd'],
    });
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, "hello from /data\n");
    // The write went to the overlay's upper dir, not to the image.
    assert.equal(await readFile(join(m.dir, "etc/motd"), "utf8"), "upper motd\n");
    // The same overlay serves containerd's `ctr run --rootfs`.
    const overlay = await mountOverlay(m.dir, home);
    try {
      const ctr = await containerd.ctr([
        "run",
        "--rm",
        "--rootfs",
        overlay.merged,
        "lazy-mount-ctr",
        "/bin/cat",
        "/etc/motd",
      ]);
      assert.equal(ctr.stdout, "upper motd\n");
    } finally {
      await overlay.remove();
    }
  });

  test("prefetches the prioritized files; a vanished registry gives EIO for missing chunks only, until it is back", async () => {
    forwarder.switch(registry.host);
    const ranged = async () => (await registry.blobGets()).filter((g) => g.status === 206).length;
    const before = await ranged();
    const m = await mount("offline", ["--fetch-timeout", "3"]);
    await until(
      "prefetched 3 files",
      () => {
        assert.doesNotMatch(m.log(), /prefetch stopped/);
        return /prefetched 3 files/.test(m.log());
      },
      30_000,
      { context: m.log },
    );
    // Footer and TOC of each of the two layers, then the three files back to back in one range.
    assert.equal((await ranged()) - before, 2 * 2 + 1);
    assert.equal(await readFile(join(m.dir, "data/new.txt"), "utf8"), "added on top\n");
    forwarder.switch(undefined);
    // Prefetched and already-read files are served from the cache.
    assert.equal(await readFile(join(m.dir, "secret/key"), "utf8"), "s3cret\n");
    assert.equal(await readFile(join(m.dir, "data/hard-b"), "utf8"), "one inode, two names\n");
    assert.equal(
      await readFile(join(m.dir, "etc/prio.txt"), "utf8"),
      "prefetched before anyone asks\n",
    );
    assert.equal(await readFile(join(m.dir, "data/new.txt"), "utf8"), "added on top\n");
    // Metadata never needs the registry.
    assert.equal((await lstat(join(m.dir, "data/big.bin"))).size, BIG);
    assert.equal(await readFails(join(m.dir, "data/big.bin")), "EIO");
    assert.match(m.log(), /read of \/data\/big\.bin failed \(EIO\)/);
    // A registry that accepts connections and never answers: EIO once --fetch-timeout passes without a byte.
    forwarder.switch("stall");
    assert.equal(await readFails(join(m.dir, "etc/motd")), "EIO");
    assert.match(m.log(), /read of \/etc\/motd failed \(EIO\): .*no bytes received for 3000 ms/);
    forwarder.switch(registry.host);
    assert.equal(sha256(await readFile(join(m.dir, "data/big.bin"))), bigHash);
  });

  test("concurrent reads of a file fetch each of its chunks once", async () => {
    forwarder.switch(registry.host);
    const m = await mount("coalesce", ["--no-prefetch"]);
    const ranged = async () => (await registry.blobGets()).filter((g) => g.status === 206).length;
    const before = await ranged();
    const reads = await Promise.all(
      Array.from({ length: 4 }, () => readFile(join(m.dir, "data/big.bin"))),
    );
    for (const bytes of reads) assert.equal(sha256(bytes), bigHash);
    // 9 MiB in 4 MiB chunks: three range reads, however many readers.
    assert.equal((await ranged()) - before, 3);
  });

  test("a corrupting proxy gives EIO and a log line, never its bytes", async () => {
    forwarder.switch(registry.host);
    const m = await mount("corrupt", ["--no-prefetch"]);
    forwarder.switch(proxy.host);
    assert.equal(await readFails(join(m.dir, "secret/key")), "EIO");
    assert.match(m.log(), /read of \/secret\/key failed \(EIO\): .*chunk/);
    assert.ok(
      proxy.requests.some((r) => r.range !== undefined),
      "the proxy served the chunk",
    );
    forwarder.switch(registry.host);
    assert.equal(await readFile(join(m.dir, "secret/key"), "utf8"), "s3cret\n");
  });

  test("--record writes the files read, in first-read order; ferry umount stops the mount", async () => {
    const record = join(home, "trace.txt");
    const m = await mount("record", ["--no-prefetch", "--record", record], lazyRef);
    await readFile(join(m.dir, "etc/rel")); // through a symlink: the file read is data/new.txt
    await readFile(join(m.dir, "data/hard-b")); // a hard link: recorded by its layer's name
    await readFile(join(m.dir, "etc/motd"));
    await readFile(join(m.dir, "data/new.txt")); // read before: not again
    await readFile(join(m.dir, "data/empty"));
    await lstat(join(m.dir, "secret/key")); // not read
    const r = await ferry(["umount", m.dir], env());
    assert.equal(r.code, 0, describeRun(r));
    const exit = await m.result;
    assert.equal(exit.code, 0, describeRun(exit));
    assert.equal(await isMountPoint(m.dir), false);
    assert.equal(
      await readFile(record, "utf8"),
      "data/new.txt\ndata/hard-a\netc/motd\ndata/empty\n",
    );
  });

  test("SIGTERM unmounts and exits 0", async () => {
    const m = await mount("sigterm", ["--no-prefetch"], lazyRef);
    assert.ok((await readdir(m.dir)).includes("bin"));
    assert.equal(await readFile(join(m.dir, "etc/motd"), "utf8"), "upper motd\n");
    const exit = await m.stop("SIGTERM");
    assert.equal(exit.code, 0, describeRun(exit));
    // TOCs and one small chunk, of layers holding a 9 MiB file and busybox.
    const stats = /unmounted .*; fetched (\d+) of (\d+) layer bytes/.exec(exit.stderr);
    assert.ok(stats, exit.stderr);
    assert.ok(Number(stats[1]) > 0 && Number(stats[1]) * 20 < Number(stats[2]), stats[0]);
    assert.equal(await isMountPoint(m.dir), false);
    assert.deepEqual(await readdir(m.dir), []);
  });

  test("ferry umount cleans up after a killed mount", async () => {
    const m = await mount("killed", ["--no-prefetch"], lazyRef);
    m.kill("SIGKILL");
    await m.result;
    assert.equal(await isMountPoint(m.dir), true, "a dead FUSE server leaves its mount");
    const r = await ferry(["umount", m.dir], env());
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(await isMountPoint(m.dir), false);
    const again = await ferry(["umount", m.dir], env());
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is not a ferry mount/);
  });

  test("a plain gzip image is refused with a clear error", async () => {
    const dir = join(home, "plain");
    await mkdir(dir);
    const r = await ferry(["mount", "--store", join(home, "store-plain"), plainRef, dir], env());
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /is not eStargz .*ferry mount reads eStargz layers only/);
    assert.match(r.stderr, /hint: convert the image first/);
    assert.equal(await isMountPoint(dir), false);
  });
});
