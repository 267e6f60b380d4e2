import { FerryError } from "../observe/index.ts";
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type Platform,
  parseManifest,
} from "./manifest.ts";
import { selectPlatform } from "./platform.ts";
import type { ImageSource, SourceManifest } from "./source.ts";

/** The image manifest a reference leads to, and the index it was picked from. */
export interface ResolvedImage {
  /** The manifest the reference named: the image's, or the index it was picked from. */
  readonly top: SourceManifest;
  /** The index the reference named, when it named one. */
  readonly index: ImageIndex | undefined;
  /** The image manifest: the platform's entry of the index (its platform kept), or the top itself. */
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
  readonly manifest: ImageManifest;
}

export interface ResolveOptions {
  signal?: AbortSignal | undefined;
  /** Names the image in messages (default: the reference). */
  name?: string | undefined;
  /**
   * The platform's manifest when already held and verified (the store's committed copy:
   * content-addressed, so it is not fetched again), else undefined.
   */
  held?: ((chosen: Descriptor) => Promise<Buffer | undefined>) | undefined;
  /** Told of the top manifest as soon as it is known, before the platform's is read. */
  onTop?: ((top: SourceManifest) => void) | undefined;
}

/**
 * Fetch the manifest, pick the platform: the manifest `reference` names in `source`, and
 * when it is an index, the manifest of `platform` from it.
 */
export async function resolveImage(
  source: ImageSource,
  reference: string,
  platform: Platform,
  options: ResolveOptions = {},
): Promise<ResolvedImage> {
  const { signal, held } = options;
  const top = await source.manifest(reference, signal);
  options.onTop?.(top);
  return pickImage(top, platform, options.name ?? reference, async (chosen) => {
    const stored = await held?.(chosen);
    return stored !== undefined && stored.length === chosen.size
      ? stored
      : (await source.manifest(chosen.digest, signal)).bytes;
  });
}

/** The image `top` leads to: itself, or the platform's child of an index, read through `child`. */
export async function pickImage(
  top: SourceManifest,
  platform: Platform,
  name: string,
  child: (chosen: Descriptor) => Promise<Buffer>,
): Promise<ResolvedImage> {
  const parsed = parseManifest(top.bytes, top.mediaType);
  if (parsed.kind === "image") {
    const descriptor = { mediaType: parsed.mediaType, digest: top.digest, size: top.bytes.length };
    return { top, index: undefined, descriptor, bytes: top.bytes, manifest: parsed.manifest };
  }
  const chosen = selectPlatform(parsed.index.manifests, platform);
  const bytes = await child(chosen);
  if (bytes.length !== chosen.size) {
    throw new FerryError(
      "FERRY_SIZE_MISMATCH",
      `manifest ${chosen.digest} of ${name} is ${bytes.length} bytes, the index says ${chosen.size}`,
      {
        hint: "the source serves another manifest than its index describes; nothing was stored — report it to the registry's operator",
        fields: { digest: chosen.digest, expected: chosen.size, received: bytes.length },
      },
    );
  }
  const inner = parseManifest(bytes, chosen.mediaType);
  if (inner.kind !== "image") {
    throw new FerryError(
      "FERRY_UNSUPPORTED_MANIFEST",
      `${name}: an index inside an index is not supported`,
    );
  }
  const descriptor: Descriptor = {
    mediaType: chosen.mediaType,
    digest: chosen.digest,
    size: chosen.size,
    ...(chosen.platform ? { platform: chosen.platform } : {}),
  };
  return { top, index: parsed.index, descriptor, bytes, manifest: inner.manifest };
}
