/** Images of an archive that is an OCI image layout (ferry save, skopeo oci-archive, Docker 25+). */
import { isDigest } from "../digest/index.ts";
import {
  Annotation,
  type Descriptor,
  type ImageManifest,
  parseManifest,
  selectPlatform,
} from "../oci/index.ts";
import { FerryAnnotation } from "../store/index.ts";
import { archiveInvalid } from "./errors.ts";
import {
  normalizedName,
  type PlanContext,
  type PlannedImage,
  parsedOrRefused,
  parseJson,
  requireBlob,
  smallFileBytes,
} from "./planned.ts";

/** Set by containerd and Docker 25+ on index.json entries: the image's full reference. */
export const CONTAINERD_IMAGE_NAME = "io.containerd.image.name";
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

export function layoutName(annotations: Record<string, string> | undefined): string | undefined {
  return annotations?.[CONTAINERD_IMAGE_NAME] ?? annotations?.[Annotation.refName];
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
  const top = await readManifest(ctx, entry, where);
  if (top.kind === "image") {
    checkImageBlobs(ctx, top.manifest, entry.digest);
    return { descriptor: withoutAnnotations(entry), manifest: top.manifest };
  }
  const child = selectPlatform(top.index.manifests, ctx.platform);
  const inner = await readManifest(ctx, child, `index ${entry.digest}`);
  if (inner.kind !== "image") {
    throw archiveInvalid(ctx.source, "an index inside an index is not supported", {
      entry: `blobs/sha256/${child.digest.slice(7)}`,
    });
  }
  checkImageBlobs(ctx, inner.manifest, child.digest);
  return { descriptor: withoutAnnotations(child), manifest: inner.manifest };
}

async function readManifest(ctx: PlanContext, d: Descriptor, where: string) {
  const file = requireBlob(ctx, d, where);
  const bytes = await smallFileBytes(ctx, file, "a manifest");
  return parsedOrRefused(ctx, file.path, () => parseManifest(bytes, d.mediaType));
}

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
