import { type FileHandle, open, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { digestOf, isDigest } from "../digest/index.ts";
import { FerryError, isFerryError } from "../observe/index.ts";
import {
  type ByteRange,
  checkRange,
  declaredMediaType,
  type Descriptor,
  boundedRange,
  type BlobSource,
  type ImageSource,
  type SourceManifest,
  verifiedBlob,
} from "../oci/index.ts";
import type { Store } from "./store.ts";

/**
 * The store as an image source: manifests by the reference an image is recorded under
 * (`docker.io/library/alpine:3.19`) or by digest, blobs from their files. Bytes are
 * checked as any source's are (a blob may have rotted on disk since it was committed).
 */
export class StoreSource implements ImageSource {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async manifest(reference: string): Promise<SourceManifest> {
    if (isDigest(reference)) {
      const bytes = await this.#read(reference);
      if (bytes === undefined)
        throw new FerryError(
          "FERRY_MANIFEST_UNKNOWN",
          `the store has no manifest ${reference} (a pull keeps one platform of an index)`,
          {
            hint: "read it from the registry, or pull that platform first (`ferry pull --platform`)",
            fields: { reference },
          },
        );
      return {
        bytes: checkedManifest(bytes, reference),
        mediaType: declaredMediaType(bytes),
        digest: reference,
      };
    }
    const record = await this.#store.findImage(reference);
    const bytes = record === undefined ? undefined : await this.#read(record.descriptor.digest);
    if (record === undefined || bytes === undefined)
      throw new FerryError("FERRY_IMAGE_NOT_FOUND", `no image ${reference} in the store`, {
        hint: "`ferry images` lists the stored images; `ferry pull` stores one",
        fields: { reference },
      });
    const { digest, mediaType } = record.descriptor;
    return { bytes: checkedManifest(bytes, digest), mediaType, digest };
  }

  open(desc: Descriptor, range?: ByteRange): Promise<Readable> {
    return openBlobFile(this.#store.blobPath(desc.digest), desc, range);
  }

  stat(digest: string): Promise<number | undefined> {
    return fileSize(this.#store.blobPath(digest));
  }

  async #read(digest: string): Promise<Buffer | undefined> {
    return this.#store.readBlob(digest).catch((err: unknown) => {
      if (isFerryError(err, "FERRY_STORE_CORRUPT")) return undefined;
      throw err;
    });
  }
}

/**
 * One blob in a file outside `blobs/`: an ingest file after it verified, read before it is
 * committed or discarded (a copy uploads from it and leaves no blob behind).
 */
export class BlobFileSource implements BlobSource {
  readonly #path: string;
  readonly #desc: Descriptor;

  constructor(path: string, desc: Descriptor) {
    this.#path = path;
    this.#desc = desc;
  }

  async open(desc: Descriptor, range?: ByteRange): Promise<Readable> {
    if (desc.digest !== this.#desc.digest) throw blobUnknown(desc.digest);
    return openBlobFile(this.#path, desc, range);
  }

  async stat(digest: string): Promise<number | undefined> {
    return digest === this.#desc.digest ? fileSize(this.#path) : undefined;
  }
}

/** The blob file at `path`: whole and verified as read, or a range, bounded; a missing file is FERRY_BLOB_UNKNOWN. */
async function openBlobFile(
  path: string,
  desc: Descriptor,
  range: ByteRange | undefined,
): Promise<Readable> {
  if (range !== undefined) checkRange(range, desc);
  let file: FileHandle;
  try {
    file = await open(path, "r");
  } catch (err) {
    throw isMissing(err) ? blobUnknown(desc.digest) : err;
  }
  if (range === undefined) return verifiedBlob(file.createReadStream(), desc);
  // createReadStream's end is inclusive.
  const body = file.createReadStream({ start: range.start, end: range.end - 1 });
  return boundedRange(body, range, desc.digest, "the store");
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** A stored manifest's bytes, checked against its digest (they may have changed on disk since). */
function checkedManifest(bytes: Buffer, digest: string): Buffer {
  const actual = digestOf(bytes);
  if (actual !== digest)
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `stored manifest ${digest} does not match its digest (got ${actual})`,
      {
        hint: "the file changed on disk after it was stored; `ferry fsck` finds and quarantines such blobs, then pull the image again",
        fields: { expected: digest, actual },
      },
    );
  return bytes;
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function blobUnknown(digest: string): FerryError {
  return new FerryError("FERRY_BLOB_UNKNOWN", `blob ${digest} is not in the store`, {
    hint: "pull the image that names it (`ferry fsck` checks the whole store)",
    fields: { digest },
  });
}
