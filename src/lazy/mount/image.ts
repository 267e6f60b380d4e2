// Opens an eStargz image for mounting: manifest (platform picked from an index), config,
// and each layer's verified TOC with the fields a filesystem shows (mtime, xattrs, devices).
import { FerryError } from "../../observe/index.ts";
import {
  type Descriptor,
  hostPlatform,
  type ImageSource,
  type Platform,
  readAll,
  resolveImage,
} from "../../oci/index.ts";
import { type RegistryClient, RegistrySource, type Repository } from "../../registry/index.ts";
import { invalidLayer } from "../errors.ts";
import { RangeReader } from "../fetch.ts";
import { FOOTER_SIZE } from "../footer.ts";
import { readToc } from "../layer.ts";
import { cleanPath } from "../toc.ts";
import type { MountEntry } from "./tree.ts";

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** What the image's config says about how to run it. */
export interface RunConfig {
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly user: string;
}

export interface MountLayer {
  readonly descriptor: Descriptor;
  readonly entries: readonly MountEntry[];
  /** Bytes fetched to read the footer and TOC. */
  readonly tocBytes: number;
}

export interface MountImage {
  readonly manifestDigest: string;
  readonly config: RunConfig;
  readonly layers: readonly MountLayer[];
}

export async function openMountImage(options: {
  registry: RegistryClient;
  repository: Repository;
  reference: string;
  platform?: Platform | undefined;
  signal?: AbortSignal | undefined;
}): Promise<MountImage> {
  const { registry, repository: repo, signal } = options;
  const source = new RegistrySource(registry, repo);
  const { manifest, descriptor } = await resolveImage(
    source,
    options.reference,
    options.platform ?? hostPlatform(),
    { signal, name: repo.path },
  );
  const manifestDigest = descriptor.digest;
  const [config, layers] = await Promise.all([
    fetchConfig(source, manifest.config, signal),
    Promise.all(manifest.layers.map((d) => openMountLayer(registry, repo, d, signal))),
  ]);
  return { manifestDigest, config, layers };
}

async function fetchConfig(
  source: ImageSource,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
): Promise<RunConfig> {
  // The stream is verified against the descriptor: it fails rather than ends on other bytes.
  const bytes = await readAll(
    await source.open(descriptor, undefined, signal),
    MAX_CONFIG_BYTES,
    `image config ${descriptor.digest}`,
  );
  const doc = JSON.parse(bytes.toString("utf8")) as { config?: Record<string, unknown> };
  const c = doc.config ?? {};
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];
  return {
    entrypoint: strings(c["Entrypoint"]),
    cmd: strings(c["Cmd"]),
    env: strings(c["Env"]),
    workingDir: typeof c["WorkingDir"] === "string" ? c["WorkingDir"] : "",
    user: typeof c["User"] === "string" ? c["User"] : "",
  };
}

/** One layer's footer and TOC, verified; a plain (non-eStargz) layer is refused. */
export async function openMountLayer(
  registry: RegistryClient,
  repository: Repository,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
): Promise<MountLayer> {
  const ranges = new RangeReader({
    registry,
    repository,
    digest: descriptor.digest,
    size: descriptor.size,
    signal,
  });
  const notLazy = (why: string) =>
    new FerryError(
      "FERRY_UNSUPPORTED_MANIFEST",
      `layer ${descriptor.digest} is not eStargz (${why}): ferry mount reads eStargz layers only`,
      {
        hint: "convert the image first (`ferry convert --estargz SRC DST` or `ctr-remote image convert --estargz --oci`), or pull it whole with `ferry pull`",
        fields: { layer: descriptor.digest },
      },
    );
  if (descriptor.size < FOOTER_SIZE) throw notLazy("too small for an eStargz footer");
  const read = await readToc(ranges, descriptor);
  if (read === undefined) throw notLazy("no eStargz footer");
  const { json, toc } = read;
  const extras = parseExtras(json, descriptor.digest);
  const entries = toc.entries.map((e): MountEntry => {
    const x = extras.get(e.path);
    return {
      ...e,
      mtime: x?.mtime ?? 0,
      xattrs: x?.xattrs ?? new Map(),
      devMajor: x?.devMajor ?? 0,
      devMinor: x?.devMinor ?? 0,
    };
  });
  return { descriptor, entries, tocBytes: ranges.fetched };
}

interface Extras {
  mtime: number;
  xattrs: Map<string, Buffer>;
  devMajor: number;
  devMinor: number;
}

const MAX_XATTR_BYTES = 64 * 1024;

/** The TOC fields parseToc leaves out, by entry path (the TOC itself was verified already). */
export function parseExtras(json: Uint8Array, layer: string): Map<string, Extras> {
  const doc = JSON.parse(Buffer.from(json).toString("utf8")) as { entries: unknown[] };
  const out = new Map<string, Extras>();
  for (const item of doc.entries) {
    const raw = item as Record<string, unknown>;
    if (raw["type"] === "chunk" || typeof raw["name"] !== "string") continue;
    const path = cleanPath(raw["name"], layer);
    const parsedTime = typeof raw["modtime"] === "string" ? Date.parse(raw["modtime"]) : Number.NaN;
    const xattrs = new Map<string, Buffer>();
    const rawX = raw["xattrs"];
    if (typeof rawX === "object" && rawX !== null) {
      for (const [name, value] of Object.entries(rawX as Record<string, unknown>)) {
        if (typeof value !== "string") continue;
        const bytes = Buffer.from(value, "base64");
        if (bytes.length > MAX_XATTR_BYTES || name.length > 255)
          throw invalidLayer(layer, `entry "${path}" has an absurd xattr ${name.slice(0, 64)}`);
        xattrs.set(name, bytes);
      }
    }
    const dev = (key: string): number => {
      const v = raw[key];
      if (v === undefined) return 0;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > 0xfffff)
        throw invalidLayer(layer, `entry "${path}": ${key} is not a device number`);
      return v;
    };
    out.set(path, {
      mtime: Number.isNaN(parsedTime) ? 0 : Math.floor(parsedTime / 1000),
      xattrs,
      devMajor: dev("devMajor"),
      devMinor: dev("devMinor"),
    });
  }
  return out;
}
