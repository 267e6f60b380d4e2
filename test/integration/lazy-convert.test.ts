// `ferry convert --estargz` against a real registry, then read back three ways: `ferry lazy cat`,
// the reference tooling (`ctr-remote images get-toc-digest` on a real containerd's content store),
// and containerd itself (pull, unpack, mount the image's root filesystem and compare).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { gunzipSync, gzipSync, zstdCompressSync } from "node:zlib";
import tar from "tar-stream";
import { extractTocJson, FOOTER_SIZE, parseFooter } from "../../src/lazy/index.ts";
import { pushIndex, pushLayout, seededBytes } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningContainerd, startContainerd } from "../fixtures/runtimes.ts";
import { describeRun, FERRY_BIN, ferry, isolatedEnv, ndjson, removeDir, tempDir } from "./cli.ts";

const execFileAsync = promisify(execFile);
const CHUNK = 64 * 1024;
const LONG = `deep/${"a-rather-long-directory-name/".repeat(4)}file-with-a-name-past-one-hundred-bytes.txt`;
const MTIME = new Date("2024-01-01T00:00:00Z");

interface Entry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link";
  content?: Buffer;
  linkname?: string;
  mode?: number;
  pax?: Record<string, string>;
}

async function random(seed: string, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of seededBytes(seed, size)) parts.push(b);
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  pack.on("data", (b: unknown) => {
    parts.push(b as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) {
    const type = e.type ?? "file";
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type,
        mode: e.mode ?? (type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644),
        mtime: MTIME,
        uid: 0,
        gid: 0,
        ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
        ...(e.pax === undefined ? {} : { pax: e.pax }),
      };
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === "file") pack.entry(header, e.content ?? Buffer.alloc(0), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(parts);
}

/** An OCI layout with one image of three layers (gzip, zstd, uncompressed), tagged `tag`. */
async function writeLayout(
  dir: string,
  tag: string,
  layers: Entry[][],
  lie?: { diffId: string },
): Promise<void> {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await writeFile(join(blobs, d.slice(7)), b);
    return d;
  };
  const kinds = [
    ["application/vnd.oci.image.layer.v1.tar+gzip", gzipSync],
    ["application/vnd.oci.image.layer.v1.tar+zstd", zstdCompressSync],
    ["application/vnd.oci.image.layer.v1.tar", (b: Buffer) => b],
  ] as const;
  const descs = [];
  const diffIds = [];
  for (const [i, entries] of layers.entries()) {
    const raw = await tarOf(entries);
    const [mediaType, compress] = kinds[i % kinds.length] as (typeof kinds)[number];
    const blob = Buffer.from(compress(raw));
    descs.push({ mediaType, digest: await put(blob), size: blob.length });
    diffIds.push(sha256(raw));
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: lie ? diffIds.map(() => lie.diffId) : diffIds },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: await put(config),
        size: config.length,
      },
      layers: descs,
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: await put(manifest),
        size: manifest.length,
        annotations: { "org.opencontainers.image.ref.name": tag },
      },
    ],
  };
  await writeFile(join(dir, "index.json"), JSON.stringify(index));
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
}

let registry: RunningRegistry;
let containerd: RunningContainerd;
let home: string;
let srcRef: string;
let dstRef: string;
let mounted: string | undefined;
/** Regular files of the merged image, as the source layers hold them. */
const files = new Map<string, Buffer>();

describe("ferry convert --estargz", { timeout: 120_000 }, () => {
  before(async () => {
    [registry, containerd, home] = await Promise.all([
      startRegistry(),
      startContainerd(),
      tempDir("convert"),
    ]);
    srcRef = `${registry.host}/convert/app:plain`;
    dstRef = `${registry.host}/convert/app:esgz`;
    const big = await random("big", 3 * CHUNK + 1234);
    const tool = await random("tool", 2 * CHUNK);
    const motd = Buffer.from("converted by ferry\n");
    const layers: Entry[][] = [
      [
        { name: "deep/", type: "directory" },
        {
          name: LONG,
          content: Buffer.from("long name\n"),
          pax: { "SCHILY.xattr.user.note": "kept" },
        },
        { name: "etc/", type: "directory" },
        { name: "etc/empty" },
        { name: "etc/motd", content: motd },
        { name: "etc/hard", type: "link", linkname: "etc/motd" },
        { name: "etc/link", type: "symlink", linkname: "motd" },
        { name: "opt/", type: "directory" },
        { name: "opt/big.bin", content: big, mode: 0o600 },
        { name: "usr/", type: "directory" },
        { name: "usr/bin/", type: "directory" },
        { name: "usr/bin/tool", content: tool, mode: 0o755 },
        { name: "var/", type: "directory" },
        { name: "var/old/", type: "directory" },
        { name: "var/old/gone", content: Buffer.from("whited out\n") },
        { name: "var/opq/", type: "directory" },
        { name: "var/opq/hidden", content: Buffer.from("under an opaque dir\n") },
      ],
      [
        { name: "etc/", type: "directory" },
        { name: "etc/upper", content: Buffer.from("second layer\n") },
        { name: "var/", type: "directory" },
        { name: "var/old/", type: "directory" },
        { name: "var/old/.wh.gone" },
        { name: "var/opq/", type: "directory" },
        { name: "var/opq/.wh..wh..opq" },
        { name: "var/opq/fresh", content: Buffer.from("fresh\n") },
      ],
      [
        { name: "srv/", type: "directory" },
        { name: "srv/data", content: await random("data", 5000) },
      ],
    ];
    // The merged view: the hard link (to the unchanged etc/motd) reads as it.
    for (const layer of layers)
      for (const e of layer)
        if ((e.type ?? "file") === "file" && !e.name.split("/").pop()?.startsWith(".wh."))
          files.set(e.name, e.content ?? Buffer.alloc(0));
    files.delete("var/old/gone");
    files.delete("var/opq/hidden");
    files.set("etc/hard", motd);
    const layout = join(home, "layout");
    await writeLayout(layout, "plain", layers);
    await pushLayout(layout, "plain", srcRef);
    await writeFile(join(home, "trace"), "/usr/bin/tool\n/not/in/the/image\n./srv/data\n");
  });

  after(async () => {
    if (mounted !== undefined)
      await containerd.ctr(["images", "unmount", mounted]).catch(() => undefined);
    await Promise.all([registry?.stop(), containerd?.stop()]);
    await removeDir(home);
  });

  const run = (args: string[]) =>
    ferry(args, isolatedEnv(home, { FERRY_STORE: join(home, "store") }));

  test("converts every layer, prioritized files first, and reports unknown paths", async () => {
    const r = await run([
      "convert",
      "--estargz",
      "--json",
      "--chunk-size",
      String(CHUNK),
      "--prioritize",
      join(home, "trace"),
      srcRef,
      dstRef,
    ]);
    assert.equal(r.code, 0, describeRun(r));
    const done = ndjson(r.stdout).find((e) => e["event"] === "done") as {
      missing: string[];
      layers: Array<{ digest: string; tocDigest: string; diffId: string }>;
    };
    assert.deepEqual(done.missing, ["not/in/the/image"]);
    assert.equal(done.layers.length, 3);

    // What the registry now holds: an OCI manifest whose layers are annotated eStargz blobs.
    const res = await fetch(`${registry.url}/v2/convert/app/manifests/esgz`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const manifest = (await res.json()) as {
      mediaType: string;
      config: { digest: string };
      layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }>;
    };
    assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
    const blob = async (d: string) =>
      Buffer.from(await (await fetch(`${registry.url}/v2/convert/app/blobs/${d}`)).arrayBuffer());
    const config = JSON.parse((await blob(manifest.config.digest)).toString()) as {
      rootfs: { diff_ids: string[] };
    };
    const firsts: string[][] = [];
    for (const [i, layer] of manifest.layers.entries()) {
      assert.equal(layer.mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
      const bytes = await blob(layer.digest);
      assert.equal(sha256(bytes), layer.digest);
      const whole = gunzipSync(bytes); // one gzip stream to any gzip reader
      assert.equal(sha256(whole), config.rootfs.diff_ids[i], `diff_id of layer ${i}`);
      assert.equal(
        layer.annotations["io.containers.estargz.uncompressed-size"],
        String(whole.length),
      );
      const footer = parseFooter(bytes.subarray(bytes.length - FOOTER_SIZE));
      assert.ok(footer, `layer ${i} ends with an eStargz footer`);
      const json = extractTocJson(
        bytes.subarray(footer.tocOffset, bytes.length - FOOTER_SIZE),
        layer.digest,
      );
      assert.equal(sha256(json), layer.annotations["containerd.io/snapshot/stargz/toc.digest"]);
      const toc = JSON.parse(json.toString()) as {
        entries: Array<{ name: string; type: string; offset?: number; chunkSize?: number }>;
      };
      firsts.push(
        toc.entries
          .filter((e) => e.type !== "chunk")
          .slice(0, 4)
          .map((e) => e.name),
      );
      if (i === 0) {
        const big = toc.entries.filter((e) => e.name === "opt/big.bin");
        assert.deepEqual(
          big.map((e) => e.type),
          ["reg", "chunk", "chunk", "chunk"],
        );
        // Each chunk starts its own gzip member: it decompresses on its own.
        for (const c of big) assert.ok(gunzipSync(bytes.subarray(c.offset as number)).length > 0);
      }
    }
    assert.deepEqual(firsts[0], ["usr", "usr/bin", "usr/bin/tool", ".prefetch.landmark"]);
    assert.equal(firsts[1]?.[0], ".no.prefetch.landmark");
    assert.deepEqual(firsts[2]?.slice(0, 3), ["srv", "srv/data", ".prefetch.landmark"]);
  });

  test("ferry lazy cat reads every file back byte for byte, each TOC verified", async () => {
    const ls = await run(["lazy", "ls", "-R", dstRef]);
    assert.equal(ls.code, 0, describeRun(ls));
    const listed = new Set(
      ls.stdout.split("\n").map((l) => / \/(\S+?)(?: -> \S+| link to \S+)?$/.exec(l)?.[1]),
    );
    for (const path of files.keys()) assert.ok(listed.has(path), `${path} listed`);
    for (const gone of ["var/old/gone", "var/opq/hidden"]) assert.ok(!listed.has(gone), gone);
    assert.match(ls.stdout, /^l\S+ .* \/etc\/link -> motd$/m);
    for (const [path, content] of files) {
      // Bytes, not text: the files are binary.
      const r = await execFileAsync(
        process.execPath,
        [FERRY_BIN, "lazy", "cat", "--stats", dstRef, path],
        {
          encoding: "buffer",
          env: {
            ...process.env,
            ...isolatedEnv(home),
            FERRY_STORE: join(home, "store"),
          } as NodeJS.ProcessEnv,
          maxBuffer: 64 << 20,
        },
      );
      assert.equal(sha256(r.stdout), sha256(content), path);
      const stats = r.stderr
        .toString()
        .split("\n")
        .filter((l) => /^ +sha256:/.test(l));
      assert.equal(stats.length, 3, r.stderr.toString());
      for (const line of stats) assert.match(line, /eStargz/, r.stderr.toString());
    }
  });

  test("containerd pulls and unpacks it as an ordinary image; ctr-remote reads each TOC digest", async () => {
    await containerd.ctr(["images", "pull", "--plain-http", dstRef]);
    const res = await fetch(`${registry.url}/v2/convert/app/manifests/esgz`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const manifest = (await res.json()) as {
      layers: Array<{ digest: string; annotations: Record<string, string> }>;
    };
    for (const layer of manifest.layers) {
      const { stdout } = await execFileAsync("ctr-remote", [
        "-a",
        containerd.socket,
        "images",
        "get-toc-digest",
        layer.digest,
      ]);
      assert.equal(stdout.trim(), layer.annotations["containerd.io/snapshot/stargz/toc.digest"]);
    }
    const { stdout: dumped } = await execFileAsync("ctr-remote", [
      "-a",
      containerd.socket,
      "images",
      "get-toc-digest",
      "--dump-toc",
      manifest.layers[0]?.digest ?? "",
    ]);
    const toc = JSON.parse(dumped) as {
      entries: Array<{ name: string; xattrs?: Record<string, string> }>;
    };
    const long = toc.entries.find((e) => e.name === LONG);
    assert.equal(Buffer.from(long?.xattrs?.["user.note"] ?? "", "base64").toString(), "kept");

    const root = join(home, "rootfs");
    await mkdir(root);
    await containerd.ctr(["images", "mount", dstRef, root]);
    mounted = root;
    for (const [path, content] of files)
      assert.equal(sha256(await readFile(join(root, path))), sha256(content), path);
    assert.equal(await readlink(join(root, "etc/link")), "motd");
    assert.equal(
      (await stat(join(root, "etc/hard"))).ino,
      (await stat(join(root, "etc/motd"))).ino,
    );
    assert.equal((await stat(join(root, "opt/big.bin"))).mode & 0o7777, 0o600);
    assert.equal((await stat(join(root, "usr/bin/tool"))).mode & 0o7777, 0o755);
    for (const gone of ["var/old/gone", "var/opq/hidden"])
      await assert.rejects(lstat(join(root, gone)), { code: "ENOENT" });
    await containerd.ctr(["images", "unmount", root]);
    mounted = undefined;
  });

  test("store and registry places give the same image", async () => {
    const pulled = await run(["pull", srcRef]);
    assert.equal(pulled.code, 0, describeRun(pulled));
    const fromStore = `${registry.host}/convert/app:from-store`;
    const args = [
      "convert",
      "--estargz",
      "--chunk-size",
      String(CHUNK),
      "--prioritize",
      join(home, "trace"),
    ];
    const pushed = await run([...args, `store:${srcRef}`, fromStore]);
    assert.equal(pushed.code, 0, describeRun(pushed));
    const stored = await run([...args, srcRef, "store:local/app:esgz"]);
    assert.equal(stored.code, 0, describeRun(stored));
    const digestOf = (text: string) => /eStargz image (sha256:[0-9a-f]{64})/.exec(text)?.[1];
    const head = await fetch(`${registry.url}/v2/convert/app/manifests/esgz`, {
      method: "HEAD",
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const first = head.headers.get("docker-content-digest");
    assert.equal(
      digestOf(pushed.stdout),
      first,
      "store → registry is the registry → registry image",
    );
    assert.equal(digestOf(stored.stdout), first, "registry → store too");
    const index = JSON.parse(await readFile(join(home, "store", "index.json"), "utf8")) as {
      manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
    };
    assert.ok(index.manifests.some((m) => m.digest === first));
    const work = await readdir(join(home, "store", "ferry"));
    assert.deepEqual(
      work.filter((n) => n.startsWith("convert-")),
      [],
      "no work files left behind",
    );
  });

  test("a source whose layer does not match its diff_id is refused, nothing pushed", async () => {
    const layout = join(home, "lying");
    const layer: Entry[] = [{ name: "f", content: Buffer.from("not what the config says\n") }];
    await writeLayout(layout, "lie", [layer], { diffId: sha256(Buffer.from("other")) });
    await pushLayout(layout, "lie", `${registry.host}/convert/lie:plain`);
    const r = await run([
      "convert",
      "--estargz",
      `${registry.host}/convert/lie:plain`,
      `${registry.host}/convert/lie:esgz`,
    ]);
    assert.equal(r.code, 6, describeRun(r));
    assert.match(r.stderr, /diff_id/);
    const res = await fetch(`${registry.url}/v2/convert/lie/manifests/esgz`, { method: "HEAD" });
    assert.equal(res.status, 404);
  });

  test("an eStargz source converts to the same image (its TOC and landmark are not carried over)", async () => {
    const again = `${registry.host}/convert/app:again`;
    const args = [
      "convert",
      "--estargz",
      "--chunk-size",
      String(CHUNK),
      "--prioritize",
      join(home, "trace"),
    ];
    const r = await run([...args, dstRef, again]);
    assert.equal(r.code, 0, describeRun(r));
    const digest = async (tag: string) =>
      (
        await fetch(`${registry.url}/v2/convert/app/manifests/${tag}`, {
          method: "HEAD",
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        })
      ).headers.get("docker-content-digest");
    assert.equal(await digest("again"), await digest("esgz"));
  });

  test("Docker media types, and one platform of a multi-platform index", async () => {
    const file = (text: string) => [{ path: "etc/arch", content: text }];
    await pushIndex(registry.host, "convert/multi", "v1", [
      {
        layers: [file("amd64\n")],
        mediaTypes: "docker",
        platform: { os: "linux", architecture: "amd64" },
      },
      {
        layers: [file("arm64\n")],
        mediaTypes: "docker",
        platform: { os: "linux", architecture: "arm64" },
      },
    ]);
    const dst = `${registry.host}/convert/multi:arm64-esgz`;
    const r = await run([
      "convert",
      "--estargz",
      "--platform",
      "linux/arm64",
      `${registry.host}/convert/multi:v1`,
      dst,
    ]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /\(linux\/arm64\)/);
    const cat = await run([
      "lazy",
      "cat",
      "--stats",
      "--platform",
      "linux/arm64",
      dst,
      "/etc/arch",
    ]);
    assert.equal(cat.code, 0, describeRun(cat));
    assert.equal(cat.stdout, "arm64\n");
    assert.match(cat.stderr, /eStargz/);
    const res = await fetch(`${registry.url}/v2/convert/multi/manifests/arm64-esgz`, {
      headers: {
        accept:
          "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
      },
    });
    assert.equal(res.headers.get("content-type"), "application/vnd.oci.image.manifest.v1+json");
  });
});
