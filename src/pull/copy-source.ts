import { FerryError } from "../observe/index.ts";
import {
  type BlobSource,
  type Descriptor,
  formatPlatform,
  parseManifest,
  readRange,
  type SourceManifest,
} from "../oci/index.ts";
import { formatReference, type Reference } from "../reference/index.ts";
import {
  type ReadRange,
  type RegistryClient,
  RegistrySource,
  type Repository,
} from "../registry/index.ts";
import { BlobFileSource, type IngestWriter, type Store, StoreSource } from "../store/index.ts";
import { fetchState, fetchVerified } from "./fetch-blob.ts";

export type { SourceManifest };

/** A blob's verified bytes in a local file, readable by range until released. */
export interface StagedBlob {
  readonly read: ReadRange;
  /** Bytes downloaded to stage it (0 when the store already had it). */
  readonly fetched: number;
  release(): Promise<void>;
}

/** Where a copy reads an image from: a registry repository or the local store. */
export interface ImageSource {
  /** The repository, for registry sources (a registry can mount blobs between its repositories). */
  readonly repo: Repository | undefined;
  /** The manifest the reference names; `all`: for stored images, the index they came from when it is stored. */
  top(all: boolean, signal?: AbortSignal): Promise<SourceManifest>;
  manifest(desc: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  stage(
    desc: Descriptor,
    onProgress: (bytes: number) => void,
    signal?: AbortSignal,
  ): Promise<StagedBlob>;
}

/** An image recorded in the store; blobs are read from their files (the caller holds a lease). */
export class StoreCopySource implements ImageSource {
  readonly repo = undefined;
  readonly #store: Store;
  readonly #blobs: StoreSource;
  readonly #name: string;

  constructor(store: Store, ref: Reference) {
    this.#store = store;
    this.#blobs = new StoreSource(store);
    this.#name = formatReference(ref);
  }

  async top(all: boolean): Promise<SourceManifest> {
    const record = await this.#store.findImage(this.#name);
    if (record === undefined) {
      throw new FerryError("FERRY_IMAGE_NOT_FOUND", `no image ${this.#name} in the store`, {
        hint: "`ferry images` lists the stored images; `ferry pull` stores one",
        fields: { reference: this.#name },
      });
    }
    const source = record.sourceDigest;
    if (all && source !== record.descriptor.digest && (await this.#store.hasBlob(source))) {
      const { bytes } = await this.#blobs.manifest(source);
      const parsed = parseManifest(bytes);
      if (parsed.kind === "index") return { bytes, mediaType: parsed.mediaType, digest: source };
    }
    return this.#blobs.manifest(this.#name);
  }

  async manifest(desc: Descriptor): Promise<Buffer> {
    if (!(await this.#store.hasBlob(desc.digest, desc.size))) {
      const platform = desc.platform === undefined ? desc.digest : formatPlatform(desc.platform);
      throw new FerryError(
        "FERRY_IMAGE_NOT_FOUND",
        `the store has no ${platform} image of ${this.#name} (a pull keeps one platform)`,
        {
          hint: "push without --all to send the stored platform, or copy every platform from the source registry with `ferry copy SRC DST --all`",
          fields: { reference: this.#name, digest: desc.digest },
        },
      );
    }
    return (await this.#blobs.manifest(desc.digest)).bytes;
  }

  async stage(desc: Descriptor): Promise<StagedBlob> {
    if (!(await this.#store.hasBlob(desc.digest, desc.size))) {
      throw new FerryError("FERRY_STORE_CORRUPT", `blob ${desc.digest} is missing from the store`, {
        hint: `pull ${this.#name} again to restore it (\`ferry fsck\` checks the whole store)`,
        fields: { digest: desc.digest },
      });
    }
    return sourcedBlob(this.#blobs, desc);
  }
}

/**
 * A registry repository. A blob the store already has is read from there;
 * any other is downloaded, verified, into the store's ingest area (resuming a
 * partial left there) and deleted once uploaded: a copy leaves no blobs behind.
 */
export class RegistryCopySource implements ImageSource {
  readonly repo: Repository;
  readonly #ref: Reference;
  readonly #registry: RegistryClient;
  readonly #manifests: RegistrySource;
  readonly #store: Store;

  constructor(registry: RegistryClient, store: Store, ref: Reference) {
    this.repo = { domain: ref.domain, path: ref.path };
    this.#ref = ref;
    this.#registry = registry;
    this.#manifests = new RegistrySource(registry, this.repo);
    this.#store = store;
  }

  async top(_all: boolean, signal?: AbortSignal): Promise<SourceManifest> {
    return this.#manifests.manifest(this.#ref.digest ?? this.#ref.tag ?? "latest", signal);
  }

  async manifest(desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    const { bytes } = await this.#manifests.manifest(desc.digest, signal);
    if (bytes.length !== desc.size) {
      throw new FerryError(
        "FERRY_SIZE_MISMATCH",
        `manifest ${desc.digest} of ${formatReference(this.#ref)} is ${bytes.length} bytes, the index says ${desc.size}`,
      );
    }
    return bytes;
  }

  async stage(
    desc: Descriptor,
    onProgress: (bytes: number) => void,
    signal?: AbortSignal,
  ): Promise<StagedBlob> {
    const store = this.#store;
    const writer = await store.ingest(desc, { signal });
    if (writer === undefined) return sourcedBlob(new StoreSource(store), desc);
    let handedOver = false;
    try {
      const fetched = await this.#download(writer, onProgress, signal);
      // Verified in the ingest area and deleted once uploaded: a copy leaves no blob behind.
      const staged: StagedBlob = {
        ...sourcedBlob(new BlobFileSource(writer.path, desc), desc),
        fetched,
        release: () => writer.discard(),
      };
      handedOver = true;
      return staged;
    } finally {
      if (!handedOver) await writer.close();
    }
  }

  /** Into the ingest file, verified: the puller's attempts and transitions, without peers. */
  #download(
    writer: IngestWriter,
    onProgress: (bytes: number) => void,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    const state = fetchState(this.#registry, undefined, this.repo, writer.descriptor, signal);
    return fetchVerified(state, writer, (e) => {
      if (e.status === "downloading") onProgress(e.current);
    });
  }
}

/** A blob a source holds, read by range for the upload (the registry checks the digest of what it receives). */
function sourcedBlob(source: BlobSource, desc: Descriptor): StagedBlob {
  return {
    fetched: 0,
    read: (start, end) => readRange(source, desc, { start, end }),
    release: async () => {},
  };
}
