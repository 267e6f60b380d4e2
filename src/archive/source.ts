import { Readable } from "node:stream";
import { digestOf, isDigest } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import {
  type ByteRange,
  checkRange,
  declaredMediaType,
  type Descriptor,
  type ImageSource,
  parseManifest,
  type SourceManifest,
  verifiedBlob,
} from "../oci/index.ts";
import { type Store, StoreSource } from "../store/index.ts";
import { uncompressedArchive } from "./compression.ts";
import { ArchiveContents, MANIFEST_MAX_BYTES } from "./contents.ts";
import { EntryIngest, type TakenFile } from "./ingest.ts";
import { layoutName } from "./layout-name.ts";
import { readTar } from "./tar-reader.ts";

/** One pass over an archive: each entry verified and taken (into the store, or held when small). */
export async function readArchive(options: {
  store: Store;
  input: Readable;
  /** The archive's name in messages. */
  source: string;
  /** Takes each entry (default: into the store, telling no one, under no lease). */
  ingest?: EntryIngest;
}): Promise<ArchiveContents> {
  const { store, source } = options;
  const ingest = options.ingest ?? new EntryIngest(store, source, () => {});
  const contents = new ArchiveContents(store, ingest, source);
  const { stream } = await uncompressedArchive(options.input);
  await readTar(stream, source, contents);
  return contents;
}

/**
 * An archive after its pass, as an image source: blobs by digest (`blobs/sha256/<hex>`),
 * manifests also by the names index.json gives them. A taken blob lives in the store under
 * the digest its bytes had; it is read and checked from there like any stored blob.
 */
export class ArchiveSource implements ImageSource {
  readonly #contents: ArchiveContents;
  readonly #stored: StoreSource;
  readonly #store: Store;

  constructor(contents: ArchiveContents, store: Store) {
    this.#contents = contents;
    this.#store = store;
    this.#stored = new StoreSource(store);
  }

  async manifest(reference: string): Promise<SourceManifest> {
    const digest = isDigest(reference) ? reference : await this.#named(reference);
    const file = digest === undefined ? undefined : this.#contents.blob(digest);
    if (file !== undefined && file.size > MANIFEST_MAX_BYTES)
      throw new FerryError(
        "FERRY_INVALID_MANIFEST",
        `it is ${file.size} bytes, too large for a manifest`,
        { fields: { archive: this.#contents.source, reference } },
      );
    if (digest === undefined || file === undefined)
      throw new FerryError(
        "FERRY_MANIFEST_UNKNOWN",
        `archive ${this.#contents.source} has no manifest ${reference}`,
        { fields: { archive: this.#contents.source, reference } },
      );
    const bytes = await this.#bytes(file);
    const actual = digestOf(bytes);
    if (actual !== digest)
      throw new FerryError(
        "FERRY_DIGEST_MISMATCH",
        `manifest ${digest} of archive ${this.#contents.source} does not match its digest (got ${actual})`,
        { fields: { expected: digest, actual } },
      );
    return { bytes, mediaType: declaredMediaType(bytes), digest };
  }

  async open(desc: Descriptor, range?: ByteRange): Promise<Readable> {
    if (range !== undefined) checkRange(range, desc);
    const file = this.#contents.blob(desc.digest);
    if (file === undefined)
      throw new FerryError(
        "FERRY_BLOB_UNKNOWN",
        `archive ${this.#contents.source} has no blob ${desc.digest}`,
        { fields: { archive: this.#contents.source, digest: desc.digest } },
      );
    if (file.bytes === undefined) return this.#stored.open(desc, range);
    const held = Readable.from([
      range === undefined ? file.bytes : file.bytes.subarray(range.start, range.end),
    ]);
    return range === undefined ? verifiedBlob(held, desc) : held;
  }

  async stat(digest: string): Promise<number | undefined> {
    return this.#contents.blob(digest)?.size;
  }

  #bytes(file: TakenFile): Promise<Buffer> {
    return file.bytes === undefined
      ? this.#store.readBlob(file.digest)
      : Promise.resolve(file.bytes);
  }

  /** The digest index.json names `name` by (containerd's image name, else ref.name). */
  async #named(name: string): Promise<string | undefined> {
    const index = this.#contents.files.get("index.json");
    if (index === undefined) return undefined;
    const parsed = parseManifest(await this.#bytes(index));
    if (parsed.kind !== "index") return undefined;
    return parsed.index.manifests.find((d) => layoutName(d.annotations) === name)?.digest;
  }
}
