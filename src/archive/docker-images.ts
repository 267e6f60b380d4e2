/**
 * Images of a `docker save` archive (manifest.json, a config file and one tar per layer).
 * The manifest is built the way containerd's importer builds it (Docker schema 2, layer media
 * type by compression), so both give an image the same digest; every layer is checked against
 * the config's rootfs.diff_ids first.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { digestOf, isDigest, SHA256 } from "../digest/index.ts";
import { configPlatform, type Descriptor, MediaType } from "../oci/index.ts";
import { StoreSource } from "../store/index.ts";
import { decompressor } from "./compression.ts";
import { normalizeEntryPath } from "./entry-path.ts";
import { archiveInvalid } from "./errors.ts";
import type { TakenFile } from "./ingest.ts";
import {
  normalizedName,
  type PlanContext,
  type PlannedImage,
  parseJson,
  smallFileBytes,
} from "./planned.ts";

/** Docker's media type for an uncompressed layer tar (what `docker save` holds). */
export const DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";
const CONFIG_MAX_BYTES = 16 << 20;

interface ManifestItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export function parseManifestJson(ctx: PlanContext, bytes: Buffer): ManifestItem[] {
  const json = parseJson(ctx, bytes, "manifest.json");
  const bad = (problem: string) => archiveInvalid(ctx.source, problem, { entry: "manifest.json" });
  if (!Array.isArray(json)) throw bad("expected a JSON array of images");
  return json.map((raw: unknown, i): ManifestItem => {
    const item = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
    if (typeof item.Config !== "string") throw bad(`[${i}].Config: expected a path`);
    if (!strings(item.Layers)) throw bad(`[${i}].Layers: expected an array of paths`);
    if (item.RepoTags != null && !strings(item.RepoTags)) {
      throw bad(`[${i}].RepoTags: expected an array of names`);
    }
    return {
      Config: item.Config,
      RepoTags: (item.RepoTags ?? []) as string[],
      Layers: item.Layers as string[],
    };
  });
}

/** RepoTags by config digest, for naming layout entries that carry only a tag. */
export function dockerNamesByConfig(
  ctx: PlanContext,
  items: ManifestItem[],
): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const [i, item] of items.entries()) {
    const config = referencedFile(ctx, item.Config, `manifest.json [${i}].Config`);
    const normalized = item.RepoTags.map((t) => normalizedName(ctx, t, "manifest.json"));
    names.set(config.digest, [...(names.get(config.digest) ?? []), ...normalized]);
  }
  return names;
}

export async function planDockerImages(
  ctx: PlanContext,
  items: ManifestItem[],
): Promise<PlannedImage[]> {
  const planned: PlannedImage[] = [];
  for (const [i, item] of items.entries()) {
    const where = `manifest.json [${i}]`;
    const configFile = referencedFile(ctx, item.Config, `${where}.Config`);
    const configBytes = await smallFileBytes(ctx, configFile, "an image config", CONFIG_MAX_BYTES);
    const config = parseJson(ctx, configBytes, configFile.path) as Record<string, unknown> | null;
    const diffIds = (config?.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === "string" && isDigest(d))) {
      throw archiveInvalid(ctx.source, "rootfs.diff_ids: expected an array of sha256 digests", {
        entry: configFile.path,
      });
    }
    if (diffIds.length !== item.Layers.length) {
      throw archiveInvalid(
        ctx.source,
        `it lists ${item.Layers.length} layers, but the config ${configFile.path} has ${diffIds.length} diff_ids`,
        { entry: "manifest.json" },
      );
    }
    const blobs: Array<{ digest: string; bytes: Buffer }> = [];
    if (configFile.bytes !== undefined)
      blobs.push({ digest: configFile.digest, bytes: configFile.bytes });
    const layers: Descriptor[] = [];
    for (const [j, path] of item.Layers.entries()) {
      const layer = referencedFile(ctx, path, `${where}.Layers[${j}]`);
      await checkDiffId(ctx, layer, diffIds[j] as string, j);
      layers.push({ mediaType: layerMediaType(layer), digest: layer.digest, size: layer.size });
      if (layer.bytes !== undefined) blobs.push({ digest: layer.digest, bytes: layer.bytes });
    }
    // Key order and media types as containerd's importer writes them: the same image, the same digest.
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: {
          mediaType: MediaType.dockerConfig,
          digest: configFile.digest,
          size: configFile.size,
        },
        layers,
      }),
    );
    const digest = digestOf(manifest);
    blobs.push({ digest, bytes: manifest });
    const platform = configPlatform(config);
    planned.push({
      names: item.RepoTags.map((t) => normalizedName(ctx, t, "manifest.json")),
      descriptor: {
        mediaType: MediaType.dockerManifest,
        digest,
        size: manifest.length,
        ...(platform === undefined ? {} : { platform }),
      },
      sourceDigest: digest,
      configDigest: configFile.digest,
      blobs,
    });
  }
  return planned;
}

function referencedFile(ctx: PlanContext, path: string, where: string): TakenFile {
  const checked = normalizeEntryPath(path);
  if (!checked.ok) {
    throw archiveInvalid(ctx.source, `${where} names "${path}": refused, ${checked.problem}`, {
      entry: "manifest.json",
    });
  }
  const file = ctx.contents.resolve(checked.path);
  if (file === undefined) {
    throw archiveInvalid(ctx.source, `${where} names "${path}", which is not in the archive`, {
      entry: "manifest.json",
    });
  }
  return file;
}

function layerMediaType(layer: TakenFile): string {
  if (layer.compression === "gzip") return MediaType.dockerLayerGzip;
  if (layer.compression === "zstd") return MediaType.ociLayerZstd;
  return DOCKER_LAYER_TAR;
}

/**
 * A layer committed by this load, read back as one range: the diff_id check verifies what it
 * decodes, and a whole (verified) open would hash the compressed bytes again just after the
 * ingest did.
 */
function storedLayer(ctx: PlanContext, layer: TakenFile): Promise<Readable> {
  const desc = { mediaType: layerMediaType(layer), digest: layer.digest, size: layer.size };
  return new StoreSource(ctx.store).open(desc, { start: 0, end: layer.size });
}

/** A layer's uncompressed sha256 must be the config's diff_id: Docker checks the same on load. */
async function checkDiffId(ctx: PlanContext, layer: TakenFile, expected: string, index: number) {
  const undo = decompressor(layer.compression);
  if (undo === undefined) {
    throw archiveInvalid(
      ctx.source,
      `the layer is ${layer.compression}-compressed, which ferry cannot read`,
      {
        entry: layer.path,
      },
    );
  }
  let actual = layer.digest;
  if (layer.compression !== "none") {
    const hash = createHash(SHA256);
    const source =
      layer.bytes === undefined ? await storedLayer(ctx, layer) : Readable.from([layer.bytes]);
    try {
      await pipeline(source, undo, async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) hash.update(chunk);
      });
    } catch (cause) {
      throw archiveInvalid(ctx.source, `the layer cannot be decompressed (${String(cause)})`, {
        entry: layer.path,
        cause,
      });
    }
    actual = `${SHA256}:${hash.digest("hex")}`;
  }
  if (actual !== expected) {
    throw archiveInvalid(
      ctx.source,
      `the layer's content hashes to ${actual}, but the config's rootfs.diff_ids[${index}] is ${expected}`,
      { entry: layer.path },
    );
  }
}
