import { FerryError } from "../observe/index.ts";
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type Platform,
  parseManifest,
  pickImage,
} from "../oci/index.ts";
import { formatReference, type Reference } from "../reference/index.ts";
import {
  blobExists,
  mountBlob,
  putManifest,
  type RegistryClient,
  type Repository,
  uploadBlob,
} from "../registry/index.ts";
import type { CopyEvent } from "./copy-events.ts";
import type { ImageSource, SourceManifest } from "./copy-source.ts";
import { Limiter } from "./limiter.ts";

/** An image manifest to put after its blobs: by its digest when it is a platform of an index copied whole. */
export interface ImagePlan {
  readonly manifest: SourceManifest;
  readonly byDigest: boolean;
  readonly platform: string | undefined;
  readonly blobs: ReadonlyArray<{ desc: Descriptor; kind: "config" | "layer" }>;
}

/**
 * What a copy puts: `top` goes under the destination reference. An index
 * copied with `all` brings each of its images; otherwise the platform picked
 * from it (as a pull picks) is the top, so its digest is kept.
 */
export async function planCopy(
  source: ImageSource,
  options: { all?: boolean | undefined; platform?: Platform | undefined; signal?: AbortSignal },
): Promise<{ top: SourceManifest; images: ImagePlan[] }> {
  const first = await source.top(options.all === true, options.signal);
  const parsed = parseManifest(first.bytes, first.mediaType);
  const top = { ...first, mediaType: parsed.mediaType };
  if (parsed.kind === "image") return { top, images: [imagePlan(top, false, undefined)] };
  const child = async (desc: Descriptor) => {
    const bytes = await source.manifest(desc, options.signal);
    const platform = desc.platform === undefined ? undefined : formatPlatform(desc.platform);
    return { bytes, platform };
  };
  if (options.all !== true) {
    // As a pull picks: the platform's manifest becomes the top, its digest kept.
    const picked = await pickImage(
      top,
      options.platform ?? hostPlatform(),
      top.digest,
      async (d) => (await child(d)).bytes,
    );
    const { mediaType, digest, platform } = picked.descriptor;
    const image = imagePlan(
      { bytes: picked.bytes, mediaType, digest },
      false,
      platform === undefined ? undefined : formatPlatform(platform),
    );
    return { top: image.manifest, images: [image] };
  }
  const images = await Promise.all(
    parsed.index.manifests.map(async (desc) => {
      const { bytes, platform } = await child(desc);
      return imagePlan({ bytes, mediaType: desc.mediaType, digest: desc.digest }, true, platform);
    }),
  );
  return { top, images };
}

function imagePlan(
  manifest: SourceManifest,
  byDigest: boolean,
  platform: string | undefined,
): ImagePlan {
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  if (parsed.kind !== "image") {
    throw new FerryError(
      "FERRY_UNSUPPORTED_MANIFEST",
      `${manifest.digest}: an index inside an index is not supported`,
    );
  }
  const { config, layers } = parsed.manifest;
  return {
    manifest: { ...manifest, mediaType: parsed.mediaType },
    byDigest,
    platform,
    blobs: [
      { desc: config, kind: "config" },
      ...layers.map((desc) => ({ desc, kind: "layer" as const })),
    ],
  };
}

type BlobOutcome = "uploaded" | "exists" | "mounted";

/**
 * The blobs and manifests of one copy into a registry repository: each digest
 * once (platforms share layers) under a concurrency limit; HEAD first, then a
 * mount from the source repository when it is on the same registry, else stage
 * and upload.
 */
export class BlobCopy {
  readonly totals = {
    bytesUploaded: 0,
    bytesDownloaded: 0,
    blobsUploaded: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
  };
  manifests = 0;
  readonly #registry: RegistryClient;
  readonly #source: ImageSource;
  readonly #dst: Repository;
  readonly #reference: string;
  readonly #limiter: Limiter;
  readonly #emit: (e: CopyEvent) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #flights = new Map<string, Promise<BlobOutcome>>();

  constructor(
    registry: RegistryClient,
    source: ImageSource,
    to: Reference,
    options: {
      concurrency: number;
      emit: (e: CopyEvent) => void;
      signal?: AbortSignal | undefined;
    },
  ) {
    this.#registry = registry;
    this.#source = source;
    this.#dst = { domain: to.domain, path: to.path };
    this.#reference = formatReference(to);
    this.#limiter = new Limiter(options.concurrency);
    this.#emit = options.emit;
    this.#signal = options.signal;
  }

  blob(desc: Descriptor, kind: "config" | "layer"): Promise<BlobOutcome> {
    let flight = this.#flights.get(desc.digest);
    if (flight === undefined) {
      flight = this.#limiter.run(async () => {
        const outcome = await this.#copy(desc, kind);
        if (outcome === "uploaded") {
          this.totals.blobsUploaded++;
          this.totals.bytesUploaded += desc.size;
        } else if (outcome === "mounted") this.totals.blobsMounted++;
        else this.totals.blobsSkipped++;
        return outcome;
      });
      this.#flights.set(desc.digest, flight);
    }
    return flight;
  }

  /** PUT the manifest's exact bytes under `tag` (a tag or its digest). */
  async put(tag: string, manifest: SourceManifest, platform: string | undefined): Promise<void> {
    const digest = await putManifest(
      this.#registry,
      this.#dst,
      tag,
      manifest.mediaType,
      manifest.bytes,
      { signal: this.#signal },
    );
    this.manifests++;
    this.#emit({
      type: "manifest",
      reference: this.#reference,
      tag,
      digest,
      mediaType: manifest.mediaType,
      size: manifest.bytes.length,
      ...(platform === undefined ? {} : { platform }),
    });
  }

  async #copy(desc: Descriptor, kind: "config" | "layer"): Promise<BlobOutcome> {
    const signal = this.#signal;
    const emit = this.#emit;
    const base = {
      type: "blob" as const,
      reference: this.#reference,
      digest: desc.digest,
      kind,
      size: desc.size,
    };
    if (await blobExists(this.#registry, this.#dst, desc, { signal })) {
      emit({ ...base, status: "exists" });
      return "exists";
    }
    let session: string | undefined;
    const from = this.#source.repo;
    if (from !== undefined && from.domain === this.#dst.domain && from.path !== this.#dst.path) {
      const mount = await mountBlob(this.#registry, this.#dst, desc.digest, from.path, { signal });
      if (mount.mounted) {
        emit({ ...base, status: "mounted", from: from.path });
        return "mounted";
      }
      session = mount.session; // not mounted: the registry opened an upload instead
    }
    emit({ ...base, status: "waiting" });
    const staged = await this.#source.stage(
      desc,
      (current) => emit({ ...base, status: "downloading", current }),
      signal,
    );
    this.totals.bytesDownloaded += staged.fetched;
    try {
      emit({ ...base, status: "uploading", current: 0 });
      await uploadBlob(this.#registry, this.#dst, desc, staged.read, {
        signal,
        session,
        onProgress: (current) => emit({ ...base, status: "uploading", current }),
      });
    } finally {
      await staged.release();
    }
    emit({ ...base, status: "complete", current: desc.size });
    return "uploaded";
  }
}
