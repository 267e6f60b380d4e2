/**
 * `npm run image`: ferry's own container image, built without a Docker daemon. Three gzip
 * layers (Node and its shared libraries with CA certificates; production node_modules;
 * ferry's sources), an OCI config with `ferry` as the entrypoint, all written into a ferry
 * store under --tag (so `ferry push` / `ferry copy store:…` / `ferry save` work), and with
 * -o also as one tar that `docker load`, `ferry load` and `ctr images import` read.
 *
 * Every entry has a fixed owner and mtime (the HEAD commit's time), so the same checkout gives
 * the same digests. Layers stream: tar → hash (diff ID) → gzip → the store's writer, which
 * hashes them as it writes and commits them under that digest (no temp file, no second read).
 */
import { readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { saveArchiveFile } from "../src/archive/index.ts";
import { digestOf } from "../src/digest/index.ts";
import { type Descriptor, hostPlatform, MediaType } from "../src/oci/index.ts";
import { familiarName, formatReference, parseReference } from "../src/reference/index.ts";
import { defaultStoreRoot, Store } from "../src/store/index.ts";
import {
  APP,
  appEntries,
  CA_BUNDLE,
  type LayerEntry,
  moduleEntries,
  ROOT,
  run,
  runtimeEntries,
  withParents,
} from "./image-files.ts";
import { writeLayer } from "./image-layer.ts";

interface BuiltLayer {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
  readonly entries: number;
}

const USAGE = `Usage: node scripts/build-image.ts [--tag REF] [--store DIR] [-o FILE] [--level N]

Build ferry's container image (no Docker daemon) into a ferry store, and optionally as a
\`docker load\` / \`ferry load\` archive.

  --tag REF     name recorded in the store (default ferry:VERSION, i.e.
                docker.io/library/ferry:VERSION); name it after your registry to \`ferry push\` it
  --store DIR   store directory (default: $FERRY_STORE or ferry's default location)
  -o FILE       also write the image as one tar (OCI layout + docker load manifest.json)
  --level N     gzip level of the layers, 1-9 (default 6)
`;

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
    for (const [name, entries] of specs) {
      const layer = await storeLayer(store, lease, name, withParents(await entries()), {
        mtime,
        level: options.gzipLevel ?? 6,
      });
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
  }
}

/** Writes a layer straight into the store, leased, under the digest the store hashed. */
async function storeLayer(
  store: Store,
  lease: { add(d: Iterable<string>): Promise<void> },
  name: string,
  entries: readonly LayerEntry[],
  options: { mtime: Date; level: number },
): Promise<BuiltLayer> {
  const writer = await store.ingestUnnamed();
  try {
    const out = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        writer.write(chunk).then(() => done(), done);
      },
    });
    const { diffId } = await writeLayer(entries, out, options);
    const digest = await writer.seal();
    await lease.add([digest]);
    await writer.commit(digest);
    return { name, digest, size: writer.size, diffId, entries: entries.length };
  } finally {
    await writer.discard();
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
