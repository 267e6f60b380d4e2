import { FerryError } from "../observe/index.ts";
import { type ImageManifest, parseManifest } from "../oci/index.ts";
import {
  familiarName,
  formatReference,
  parseReference,
  type Reference,
} from "../reference/index.ts";
import { diskUsage, type ImageRecord, type Store } from "../store/index.ts";

/** Finds a stored image by reference (normalized like a pull) or by a digest prefix. */
export async function findLocalImage(store: Store, text: string): Promise<ImageRecord> {
  const images = await store.images();
  const digestLike = /^(sha256:)?[a-f0-9]{6,64}$/.test(text);
  if (digestLike) {
    const prefix = text.startsWith("sha256:") ? text : `sha256:${text}`;
    const hits = images.filter(
      (r) => r.descriptor.digest.startsWith(prefix) || r.sourceDigest.startsWith(prefix),
    );
    if (hits.length > 0) return hits[0] as ImageRecord;
  }
  const wanted = parseReference(text);
  const name = formatReference(wanted);
  const hit = images.find((r) => r.reference === name);
  if (hit === undefined) throw notStored(wanted, text, images);
  return hit;
}

/** Not found; when the repository is stored under other names, those are what the user meant. */
function notStored(wanted: Reference, text: string, images: readonly ImageRecord[]): FerryError {
  const name = formatReference(wanted);
  const others = images
    .map((r) => parseReference(r.reference))
    .filter((r) => r.domain === wanted.domain && r.path === wanted.path)
    .map((r) => familiarName(r))
    .sort();
  if (others.length === 0) {
    return new FerryError("FERRY_IMAGE_NOT_FOUND", `no image ${name} in the store`, {
      hint: `list stored images with \`ferry images\`, or pull it with \`ferry pull ${text}\``,
      fields: { reference: name },
    });
  }
  return new FerryError(
    "FERRY_IMAGE_NOT_FOUND",
    `no image ${name} in the store; it holds ${others.join(", ")}`,
    {
      hint: `name one of those, e.g. \`${others[0]}\`, or pull ${name} with \`ferry pull ${text}\``,
      fields: { reference: name },
    },
  );
}

export async function readImageManifest(store: Store, record: ImageRecord): Promise<ImageManifest> {
  const parsed = parseManifest(
    await store.readBlob(record.descriptor.digest),
    record.descriptor.mediaType,
  );
  if (parsed.kind !== "image") {
    throw new FerryError(
      "FERRY_STORE_CORRUPT",
      `${record.reference} points at an index, not an image manifest`,
    );
  }
  return parsed.manifest;
}

/**
 * Each stored image's SIZE, as \`images\`, \`inspect\` and \`df -v\` all show it: the bytes of its
 * blobs in the store (manifest, config, layers, the index it came from), each blob once.
 */
export async function imageSizes(store: Store): Promise<Map<string, number>> {
  return new Map((await diskUsage(store)).images.map((u) => [u.reference, u.bytes]));
}
