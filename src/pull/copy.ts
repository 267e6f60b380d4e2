import { FerryError } from "../observe/index.ts";
import type { Platform } from "../oci/index.ts";
import { formatReference, parseReference, type Reference } from "../reference/index.ts";
import type { RegistryClient } from "../registry/index.ts";
import type { Store } from "../store/index.ts";
import { BlobCopy, planCopy } from "./copy-blobs.ts";
import type { CopyEvent, CopySummary } from "./copy-events.ts";
import { type ImageSource, RegistryCopySource, StoreCopySource } from "./copy-source.ts";
import { DEFAULT_CONCURRENCY, Puller } from "./puller.ts";

/** Where an image lives: a registry, or the local store (written `store:REF`). */
export interface Place {
  readonly kind: "registry" | "store";
  readonly ref: Reference;
}

export const STORE_PREFIX = "store:";

/** `store:REF` is the store, anything else a registry (Docker Hub's `store` image: `docker.io/library/store`). */
export function parsePlace(text: string): Place {
  return text.startsWith(STORE_PREFIX)
    ? { kind: "store", ref: parseReference(text.slice(STORE_PREFIX.length)) }
    : { kind: "registry", ref: parseReference(text) };
}

export function formatPlace(place: Place): string {
  return `${place.kind === "store" ? STORE_PREFIX : ""}${formatReference(place.ref)}`;
}

export interface CopierOptions {
  registry: RegistryClient;
  store: Store;
  /** Blobs in flight at once. */
  concurrency?: number;
}

export interface CopyOptions {
  /** Every platform of an index (each image by digest, then the index); without it, one platform. */
  all?: boolean;
  /** The platform taken from an index without `all` (default: this host's). */
  platform?: Platform;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

/**
 * Copies images between places with manifests byte for byte, so digests stay
 * the same end to end: registry → registry and store → registry (blobs the
 * destination has are skipped, blobs in another repository of the same
 * registry mounted, the rest uploaded), registry → store (a pull), store →
 * store (another name for the same image).
 */
export class Copier {
  readonly #registry: RegistryClient;
  readonly #store: Store;
  readonly #concurrency: number;

  constructor(options: CopierOptions) {
    this.#registry = options.registry;
    this.#store = options.store;
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  }

  async copy(from: Place, to: Place, options: CopyOptions = {}): Promise<CopySummary> {
    const started = performance.now();
    let summary: Omit<CopySummary, "seconds">;
    if (to.kind === "registry") {
      summary = await this.#push(from, to.ref, options);
    } else if (options.all) {
      throw new FerryError("FERRY_INVALID_ARGUMENT", "--all cannot copy into the store", {
        hint: "the store keeps one platform per name; choose it with --platform",
      });
    } else if (from.kind === "store") {
      summary = await this.#rename(from.ref, to.ref, options);
    } else {
      summary = await this.#pull(from.ref, to.ref, options);
    }
    return { ...summary, seconds: Math.round(performance.now() - started) / 1000 };
  }

  async #push(
    from: Place,
    to: Reference,
    options: CopyOptions,
  ): Promise<Omit<CopySummary, "seconds">> {
    const source: ImageSource =
      from.kind === "store"
        ? new StoreCopySource(this.#store, from.ref)
        : new RegistryCopySource(this.#registry, this.#store, from.ref);
    const { top, images } = await planCopy(source, options);
    const destination = formatReference(to);
    if (to.digest !== undefined && to.digest !== top.digest) {
      throw new FerryError(
        "FERRY_DIGEST_MISMATCH",
        `${formatPlace(from)} is ${top.digest}, not the digest ${destination} names`,
        { hint: "name the destination by tag, or by the source's digest" },
      );
    }
    const emit = options.onEvent ?? (() => {});
    emit({
      type: "resolved",
      source: formatPlace(from),
      destination,
      digest: top.digest,
      mediaType: top.mediaType,
      into: "registry",
    });
    const digests = images.flatMap((i) => [
      i.manifest.digest,
      ...i.blobs.map((b) => b.desc.digest),
    ]);
    // Store blobs are read while they upload: garbage collection must leave them be.
    const lease = await this.#store.lease(undefined, [top.digest, ...digests]);
    const run = new BlobCopy(this.#registry, source, to, {
      concurrency: this.#concurrency,
      emit,
      signal: options.signal,
    });
    const tag = to.tag ?? top.digest;
    try {
      await Promise.all(
        images.map(async (image) => {
          await Promise.all(image.blobs.map((b) => run.blob(b.desc, b.kind)));
          await run.put(
            image.byDigest ? image.manifest.digest : tag,
            image.manifest,
            image.platform,
          );
        }),
      );
      if (images.some((i) => i.byDigest)) await run.put(tag, top, undefined);
    } finally {
      await lease.release();
    }
    return {
      source: formatPlace(from),
      destination,
      digest: top.digest,
      mediaType: top.mediaType,
      size: top.bytes.length,
      manifests: run.manifests,
      ...run.totals,
    };
  }

  async #pull(
    from: Reference,
    to: Reference,
    options: CopyOptions,
  ): Promise<Omit<CopySummary, "seconds">> {
    const emit = options.onEvent ?? (() => {});
    const source = formatReference(from);
    const destination = formatReference(to);
    const puller = new Puller({
      registry: this.#registry,
      store: this.#store,
      concurrency: this.#concurrency,
    });
    let mediaType = "";
    try {
      const s = await puller.pull(from, {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.platform ? { platform: options.platform } : {}),
        onEvent: (e) => {
          if (e.type !== "resolved") return emit(e);
          mediaType = e.mediaType;
          emit({
            type: "resolved",
            source,
            destination: `${STORE_PREFIX}${destination}`,
            digest: e.digest,
            mediaType,
            into: "store",
          });
        },
      });
      // The pull records the source's name; the destination's is added beside it.
      const record = destination === source ? undefined : await this.#store.findImage(source);
      if (record !== undefined)
        await this.#store.recordImage(destination, record.descriptor, record.sourceDigest);
      return {
        source,
        destination: `${STORE_PREFIX}${destination}`,
        digest: s.digest,
        mediaType,
        size: 0,
        manifests: 0,
        bytesUploaded: 0,
        bytesDownloaded: s.bytesDownloaded,
        blobsUploaded: 0,
        blobsSkipped: s.blobsSkipped,
        blobsMounted: 0,
      };
    } finally {
      await puller.close();
    }
  }

  /** store → store: the same image under another name. */
  async #rename(
    from: Reference,
    to: Reference,
    options: CopyOptions,
  ): Promise<Omit<CopySummary, "seconds">> {
    const source = formatReference(from);
    const record = await this.#store.findImage(source);
    if (record === undefined) {
      throw new FerryError("FERRY_IMAGE_NOT_FOUND", `no image ${source} in the store`, {
        hint: "`ferry images` lists the stored images",
      });
    }
    const destination = formatReference(to);
    const { descriptor, sourceDigest } = record;
    if (destination !== source)
      await this.#store.recordImage(destination, descriptor, sourceDigest);
    options.onEvent?.({
      type: "resolved",
      source: `${STORE_PREFIX}${source}`,
      destination: `${STORE_PREFIX}${destination}`,
      digest: sourceDigest,
      mediaType: descriptor.mediaType,
      into: "store",
    });
    return {
      source: `${STORE_PREFIX}${source}`,
      destination: `${STORE_PREFIX}${destination}`,
      digest: sourceDigest,
      mediaType: descriptor.mediaType,
      size: descriptor.size,
      manifests: 0,
      bytesUploaded: 0,
      bytesDownloaded: 0,
      blobsUploaded: 0,
      blobsSkipped: 0,
      blobsMounted: 0,
    };
  }
}
