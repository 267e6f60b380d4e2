import { rm } from "node:fs/promises";
import { join } from "node:path";
import { digestOf } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageManifest,
  type ImageSource,
  MediaType,
  type Platform,
  readAll,
  resolveImage,
} from "../oci/index.ts";
import { type RegistryClient, RegistrySource } from "../registry/index.ts";
import { type Store, StoreSource } from "../store/index.ts";
import { convertLayer, isConvertibleLayer } from "./convert-layer.ts";
import {
  type ImagePlace,
  type ImageWriter,
  RegistryImageWriter,
  StoreImageWriter,
} from "./convert-places.ts";
import { priorityPath } from "./convert-order.ts";
import { DEFAULT_CHUNK_SIZE } from "./estargz-writer.ts";
import { TOC_DIGEST_ANNOTATION } from "./toc.ts";

/** Layer annotation: bytes of the uncompressed eStargz layer. */
export const UNCOMPRESSED_SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size";

export type ConvertEvent =
  | {
      type: "resolved";
      source: string;
      destination: string;
      /** The source image manifest converted. */
      digest: string;
      platform: string | undefined;
      layers: number;
    }
  | { type: "layer"; index: number; status: "converting"; digest: string; size: number }
  | {
      type: "layer";
      index: number;
      status: "converted";
      digest: string;
      converted: string;
      size: number;
      tocDigest: string;
      entries: number;
      prioritized: number;
    }
  | {
      type: "blob";
      kind: "layer" | "config";
      digest: string;
      size: number;
      status: "exists" | "written";
    }
  | { type: "manifest"; digest: string; size: number };

export interface ConvertedLayerSummary {
  readonly source: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
  readonly tocDigest: string;
  readonly uncompressedSize: number;
}

export interface ConvertSummary {
  readonly source: string;
  readonly destination: string;
  /** The new image manifest. */
  readonly digest: string;
  readonly mediaType: string;
  readonly platform: string | undefined;
  readonly layers: readonly ConvertedLayerSummary[];
  /** Prioritized paths that no layer holds (ignored). */
  readonly missing: readonly string[];
  readonly seconds: number;
}

export interface ConvertOptions {
  /** Paths inside the image to put first in their layers, then the prefetch landmark. */
  prioritize?: readonly string[] | undefined;
  /** Largest chunk of a file in one gzip member (default 4 MiB). */
  chunkSize?: number | undefined;
  /** The platform taken from a multi-platform source (default: this host's). */
  platform?: Platform | undefined;
  onEvent?: ((event: ConvertEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface ConverterOptions {
  registry: RegistryClient;
  /** Holds the work files (spooled tars, converted layers), and is a place to read from or write to. */
  store: Store;
}

/**
 * Converts an image to eStargz: every layer rewritten (verified as read),
 * a new config (the new diff_ids) and an OCI manifest whose layers carry the
 * TOC digest and uncompressed-size annotations. A multi-platform source gives
 * one platform; the result is a single-platform image.
 */
export class EstargzConverter {
  readonly #registry: RegistryClient;
  readonly #store: Store;

  constructor(options: ConverterOptions) {
    this.#registry = options.registry;
    this.#store = options.store;
  }

  async convert(
    from: ImagePlace,
    to: ImagePlace,
    options: ConvertOptions = {},
  ): Promise<ConvertSummary> {
    const started = performance.now();
    const { signal } = options;
    const emit = options.onEvent ?? (() => {});
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const origin: ImageSource =
      from.kind === "registry"
        ? new RegistrySource(this.#registry, from.repository)
        : new StoreSource(this.#store);
    const resolved = await resolveImage(
      origin,
      from.kind === "registry" ? from.reference : from.name,
      options.platform ?? hostPlatform(),
      { signal, name: from.name },
    );
    const { manifest } = resolved;
    const digest = resolved.descriptor.digest;
    // A platform picked from an index is recorded with the converted image.
    const platform = resolved.index === undefined ? undefined : resolved.descriptor.platform;
    const configBytes = await readConfig(origin, manifest.config, signal);
    const config = parseConfig(configBytes, manifest.config.digest);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length)
      throw new FerryError(
        "FERRY_INVALID_MANIFEST",
        `image ${digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`,
      );
    for (const layer of manifest.layers)
      if (!isConvertibleLayer(layer.mediaType))
        throw new FerryError(
          "FERRY_UNSUPPORTED_MANIFEST",
          `layer ${layer.digest} has media type ${layer.mediaType}, which ferry cannot convert`,
          { hint: "only tar layers (uncompressed, gzip or zstd) can be rewritten as eStargz" },
        );
    emit({
      type: "resolved",
      source: from.name,
      destination: to.name,
      digest,
      platform: platform === undefined ? undefined : formatPlatform(platform),
      layers: manifest.layers.length,
    });

    const lease = await this.#store.lease(undefined, [
      digest,
      manifest.config.digest,
      ...manifest.layers.map((l) => l.digest),
    ]);
    try {
      const writer: ImageWriter =
        to.kind === "registry"
          ? new RegistryImageWriter(this.#registry, to)
          : new StoreImageWriter(this.#store, to.name, lease);
      // Work files named by tempPathFor here are swept by `ferry prune` once their process is gone.
      const workDir = join(this.#store.root, "ferry");
      const prioritize = options.prioritize ?? [];
      const found = new Set<string>();
      const layers: Array<ConvertedLayerSummary & { descriptor: Descriptor }> = [];
      for (const [index, source] of manifest.layers.entries()) {
        emit({
          type: "layer",
          index,
          status: "converting",
          digest: source.digest,
          size: source.size,
        });
        const body = await origin.open(source, undefined, signal);
        const converted = await convertLayer({
          body,
          descriptor: source,
          diffId: diffIds[index],
          workDir,
          prioritize,
          chunkSize,
          signal,
        }).finally(() => body.destroy());
        try {
          for (const p of converted.prioritized) found.add(p);
          emit({
            type: "layer",
            index,
            status: "converted",
            digest: source.digest,
            converted: converted.digest,
            size: converted.size,
            tocDigest: converted.tocDigest,
            entries: converted.entries,
            prioritized: converted.prioritized.length,
          });
          const descriptor: Descriptor = {
            mediaType: MediaType.ociLayerGzip,
            digest: converted.digest,
            size: converted.size,
            annotations: {
              [TOC_DIGEST_ANNOTATION]: converted.tocDigest,
              [UNCOMPRESSED_SIZE_ANNOTATION]: String(converted.uncompressedSize),
            },
          };
          const had = await writer.layer(descriptor, converted.path, signal);
          emit({
            type: "blob",
            kind: "layer",
            digest: descriptor.digest,
            size: descriptor.size,
            status: had ? "exists" : "written",
          });
          layers.push({
            descriptor,
            source: source.digest,
            digest: converted.digest,
            size: converted.size,
            diffId: converted.diffId,
            tocDigest: converted.tocDigest,
            uncompressedSize: converted.uncompressedSize,
          });
        } finally {
          await rm(converted.path, { force: true });
        }
      }

      const newConfig = Buffer.from(
        JSON.stringify({
          ...config.raw,
          rootfs: { ...config.rootfs, diff_ids: layers.map((l) => l.diffId) },
        }),
      );
      const configDesc: Descriptor = {
        mediaType: MediaType.ociConfig,
        digest: digestOf(newConfig),
        size: newConfig.length,
      };
      const hadConfig = await writer.blob(configDesc, newConfig, signal);
      emit({
        type: "blob",
        kind: "config",
        digest: configDesc.digest,
        size: configDesc.size,
        status: hadConfig ? "exists" : "written",
      });
      const newManifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: configDesc,
        layers: layers.map((l) => l.descriptor),
        ...(manifest.annotations === undefined ? {} : { annotations: manifest.annotations }),
      };
      const manifestBytes = Buffer.from(JSON.stringify(newManifest));
      const written = await writer.manifest(
        MediaType.ociManifest,
        manifestBytes,
        platform === undefined ? undefined : platform,
        signal,
      );
      emit({ type: "manifest", digest: written, size: manifestBytes.length });
      const missing = prioritize.map(priorityPath).filter((p) => p !== "" && !found.has(p));
      return {
        source: from.name,
        destination: to.name,
        digest: written,
        mediaType: MediaType.ociManifest,
        platform: platform === undefined ? undefined : formatPlatform(platform),
        layers: layers.map(({ descriptor: _d, ...rest }) => rest),
        missing: [...new Set(missing)],
        seconds: Math.round(performance.now() - started) / 1000,
      };
    } finally {
      await lease.release();
    }
  }
}

const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** An image config, verified against its descriptor as it is read. */
async function readConfig(
  source: ImageSource,
  desc: Descriptor,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  if (desc.size > MAX_CONFIG_BYTES)
    throw new FerryError(
      "FERRY_INVALID_MANIFEST",
      `config ${desc.digest} claims ${desc.size} bytes`,
    );
  return readAll(
    await source.open(desc, undefined, signal),
    MAX_CONFIG_BYTES,
    `config ${desc.digest}`,
  );
}

interface ParsedConfig {
  raw: Record<string, unknown>;
  rootfs: Record<string, unknown> & { diff_ids: string[] };
}

function parseConfig(bytes: Buffer, digest: string): ParsedConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new FerryError("FERRY_INVALID_MANIFEST", `image config ${digest} is not JSON`);
  }
  const rootfs = (raw as { rootfs?: unknown } | null)?.rootfs as
    | Record<string, unknown>
    | undefined;
  const ids = rootfs?.["diff_ids"];
  if (
    typeof raw !== "object" ||
    raw === null ||
    rootfs === undefined ||
    !Array.isArray(ids) ||
    !ids.every((d) => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d))
  )
    throw new FerryError(
      "FERRY_INVALID_MANIFEST",
      `image config ${digest} has no valid rootfs.diff_ids`,
    );
  return { raw: raw as Record<string, unknown>, rootfs: { ...rootfs, diff_ids: ids as string[] } };
}
