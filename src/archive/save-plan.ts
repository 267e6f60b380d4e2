/**
 * The metadata files of a saved archive, which is at once an OCI image layout and a
 * `docker load` archive, as Docker 25+ writes them. Pure: images in, file contents out.
 */
import { Annotation, type Descriptor, type ImageManifest, MediaType } from "../oci/index.ts";
import { FerryAnnotation, OCI_LAYOUT_VERSION } from "../store/index.ts";
import { blobPathOf } from "./entry-path.ts";
import { CONTAINERD_IMAGE_NAME } from "./layout-name.ts";

export interface SavedImage {
  /** Full reference, as the store records it: becomes ref.name and io.containerd.image.name. */
  readonly reference: string;
  /** The image manifest (with platform, when known). */
  readonly descriptor: Descriptor;
  readonly sourceDigest: string;
  readonly manifest: ImageManifest;
  /** Docker's names, "repo:tag" in Docker's familiar form; empty for images known by digest only. */
  readonly repoTags: readonly string[];
  /** A container image `docker load` can take (an image config, tar layers). */
  readonly dockerLoadable: boolean;
}

export interface ArchivePlan {
  readonly files: ReadonlyArray<{ name: string; bytes: Buffer }>;
  /** Every blob once, in a stable order: per image its manifest, config, then layers. */
  readonly blobs: readonly Descriptor[];
}

interface DockerManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export function planArchive(images: readonly SavedImage[]): ArchivePlan {
  const blobs = new Map<string, Descriptor>();
  const index: Descriptor[] = [];
  const items = new Map<string, DockerManifestItem>();
  const repositories: Record<string, Record<string, string>> = {};
  for (const image of images) {
    for (const d of [image.descriptor, image.manifest.config, ...image.manifest.layers]) {
      if (!blobs.has(d.digest))
        blobs.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
    index.push(indexEntry(image));
    if (!image.dockerLoadable) continue;
    const item = items.get(image.descriptor.digest) ?? {
      Config: blobPathOf(image.manifest.config.digest),
      RepoTags: null,
      Layers: image.manifest.layers.map((l) => blobPathOf(l.digest)),
    };
    items.set(image.descriptor.digest, item);
    const top = image.manifest.layers.at(-1)?.digest;
    for (const tag of image.repoTags) {
      if (item.RepoTags?.includes(tag)) continue;
      item.RepoTags = [...(item.RepoTags ?? []), tag];
      const [repository, name] = splitRepoTag(tag);
      if (top === undefined) continue;
      const tags = repositories[repository] ?? {};
      tags[name] = top.slice(top.indexOf(":") + 1);
      repositories[repository] = tags;
    }
  }
  const json = (value: unknown) => Buffer.from(`${JSON.stringify(value)}\n`);
  const files = [
    {
      name: "oci-layout",
      bytes: Buffer.from(JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })),
    },
    {
      name: "index.json",
      bytes: json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index }),
    },
    { name: "manifest.json", bytes: json([...items.values()]) },
  ];
  if (Object.keys(repositories).length > 0)
    files.push({ name: "repositories", bytes: json(repositories) });
  return { files, blobs: [...blobs.values()] };
}

function indexEntry(image: SavedImage): Descriptor {
  const annotations: Record<string, string> = {};
  if (image.sourceDigest !== image.descriptor.digest) {
    annotations[FerryAnnotation.sourceDigest] = image.sourceDigest;
  }
  annotations[CONTAINERD_IMAGE_NAME] = image.reference;
  annotations[Annotation.refName] = image.reference;
  const d = image.descriptor;
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform === undefined ? {} : { platform: d.platform }),
    annotations,
  };
}

/** "host:5000/repo:tag" → ["host:5000/repo", "tag"]: the tag follows the last colon after the last slash. */
export function splitRepoTag(repoTag: string): [string, string] {
  const colon = repoTag.lastIndexOf(":");
  if (colon <= repoTag.lastIndexOf("/")) return [repoTag, "latest"];
  return [repoTag.slice(0, colon), repoTag.slice(colon + 1)];
}
