/** Images of an archive that is an OCI image layout (ferry save, skopeo oci-archive, Docker 25+). */
import { isDigest } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import {
  type Descriptor,
  type ImageManifest,
  parseManifest,
  pickImage,
  type SourceManifest,
} from "../oci/index.ts";
import { FerryAnnotation } from "../store/index.ts";
import { blobPathOf } from "./entry-path.ts";
import { archiveInvalid } from "./errors.ts";
import { layoutName } from "./layout-name.ts";
import {
  normalizedName,
  type PlanContext,
  type PlannedImage,
  parsedOrRefused,
  parseJson,
  requireBlob,
  smallFileBytes,
} from "./planned.ts";
import { ArchiveSource } from "./source.ts";

const LAYOUT_VERSION = "1.0.0";

/**
 * Plans every entry of index.json. Entries are named by `io.containerd.image.name`, else by a
 * `ref.name` that is a whole reference; a bare tag (Docker 25 writes "latest") names nothing
 * by itself, so `dockerNames` (RepoTags from manifest.json, by config digest) fills in.
 */
export async function planLayoutImages(
  ctx: PlanContext,
  dockerNames: ReadonlyMap<string, string[]>,
): Promise<PlannedImage[]> {
  await checkLayoutVersion(ctx);
  const indexFile = ctx.contents.files.get("index.json");
  if (indexFile === undefined) throw new Error("planLayoutImages needs index.json");
  const indexBytes = await smallFileBytes(ctx, indexFile, "index.json");
  const parsed = parsedOrRefused(ctx, "index.json", () => parseManifest(indexBytes));
  if (parsed.kind !== "index") {
    throw archiveInvalid(ctx.source, "it is not an image index", { entry: "index.json" });
  }
  const planned: PlannedImage[] = [];
  for (const [i, entry] of parsed.index.manifests.entries()) {
    const where = `index.json manifests[${i}]`;
    const image = await resolveImage(ctx, entry, where);
    const named = layoutName(entry.annotations);
    const names =
      named !== undefined && /[/:@]/.test(named)
        ? [normalizedName(ctx, named, "index.json")]
        : (dockerNames.get(image.manifest.config.digest) ?? []);
    const claimed = entry.annotations?.[FerryAnnotation.sourceDigest];
    planned.push({
      names,
      descriptor: image.descriptor,
      sourceDigest: claimed !== undefined && isDigest(claimed) ? claimed : entry.digest,
      configDigest: image.manifest.config.digest,
      blobs: [],
    });
  }
  return planned;
}

async function checkLayoutVersion(ctx: PlanContext): Promise<void> {
  const file = ctx.contents.files.get("oci-layout");
  if (file === undefined) return; // docker save of Docker 25 and skopeo write it; tolerate its absence
  const layout = parseJson(ctx, await smallFileBytes(ctx, file, "oci-layout"), "oci-layout");
  const version = (layout as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (version !== LAYOUT_VERSION) {
    throw archiveInvalid(
      ctx.source,
      `unsupported image layout version ${JSON.stringify(version)} (expected ${LAYOUT_VERSION})`,
      { entry: "oci-layout" },
    );
  }
}

/** The image manifest an index.json entry leads to: itself, or this platform's child of an index. */
async function resolveImage(
  ctx: PlanContext,
  entry: Descriptor,
  where: string,
): Promise<{ descriptor: Descriptor; manifest: ImageManifest }> {
  const source = new ArchiveSource(ctx.contents, ctx.store);
  const top = await readManifest(ctx, source, entry, where);
  const picked = await refusedIfMalformed(ctx, blobPathOf(entry.digest), () =>
    pickImage(
      top,
      ctx.platform,
      entry.digest,
      async (child) => (await readManifest(ctx, source, child, `index ${entry.digest}`)).bytes,
    ),
  );
  checkImageBlobs(ctx, picked.manifest, picked.descriptor.digest);
  const descriptor = picked.index === undefined ? entry : picked.descriptor;
  return { descriptor: withoutAnnotations(descriptor), manifest: picked.manifest };
}

/** A manifest the archive holds for `d` (present, of its size), read through the archive's source. */
async function readManifest(
  ctx: PlanContext,
  source: ArchiveSource,
  d: Descriptor,
  where: string,
): Promise<SourceManifest> {
  const file = requireBlob(ctx, d, where);
  const { bytes, digest } = await refusedIfMalformed(ctx, file.path, () =>
    source.manifest(d.digest),
  );
  return { bytes, mediaType: d.mediaType, digest };
}

/** What is wrong with a manifest (not JSON, an index in an index, a size its index denies) refuses the archive, naming the entry. */
async function refusedIfMalformed<T>(
  ctx: PlanContext,
  entry: string,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (MALFORMED.some((code) => isFerryError(err, code)))
      throw archiveInvalid(ctx.source, (err as Error).message, { entry, cause: err });
    throw err;
  }
}

const MALFORMED = [
  "FERRY_INVALID_MANIFEST",
  "FERRY_UNSUPPORTED_MANIFEST",
  "FERRY_SIZE_MISMATCH",
  "FERRY_DIGEST_MISMATCH",
] as const;

function checkImageBlobs(ctx: PlanContext, manifest: ImageManifest, digest: string): void {
  requireBlob(ctx, manifest.config, `manifest ${digest} (config)`);
  for (const [i, layer] of manifest.layers.entries()) {
    requireBlob(ctx, layer, `manifest ${digest} (layers[${i}])`);
  }
}

function withoutAnnotations(d: Descriptor): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform === undefined ? {} : { platform: d.platform }),
  };
}
