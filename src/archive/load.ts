/**
 * `ferry load`: one pass over the archive puts every verified blob into the store; then the
 * images are planned and checked (sizes, references, diff_ids); only when all of them pass are
 * built manifests written and names recorded. A refused archive records nothing; blobs it
 * already committed are verified content that no name refers to, reclaimed by prune.
 */
import type { Readable } from "node:stream";
import { FerryError } from "../observe/index.ts";
import { hostPlatform, type Platform } from "../oci/index.ts";
import type { Lease, Store } from "../store/index.ts";
import type { ArchiveContents } from "./contents.ts";
import { dockerNamesByConfig, parseManifestJson, planDockerImages } from "./docker-images.ts";
import { archiveInvalid } from "./errors.ts";
import { EntryIngest, type IngestEvent } from "./ingest.ts";
import { planLayoutImages } from "./layout-images.ts";
import { type PlanContext, type PlannedImage, smallFileBytes } from "./planned.ts";
import { readArchive } from "./source.ts";

export type LoadEvent =
  | IngestEvent
  | { type: "image"; reference: string; digest: string; configDigest: string }
  | { type: "unnamed"; digest: string; configDigest: string };

export interface LoadOptions {
  store: Store;
  input: Readable;
  /** The archive's name in messages: its path, or "stdin". */
  source: string;
  /** Normalizes a name found in the archive (RepoTags, ref.name) to a full reference; throws if invalid. */
  normalizeName(text: string): string;
  /** Which image of a multi-platform index to record; default this host's. */
  platform?: Platform;
  onEvent?(event: LoadEvent): void;
  /** Stops the read (FERRY_INTERRUPTED); nothing is recorded. */
  signal?: AbortSignal;
}

export interface LoadedImage {
  reference: string;
  digest: string;
  configDigest: string;
}

export interface LoadSummary {
  format: "oci" | "docker";
  images: LoadedImage[];
  /** Images the archive gives no name: their blobs are stored, nothing refers to them. */
  unnamed: Array<{ digest: string; configDigest: string }>;
  blobsWritten: number;
  blobsSkipped: number;
  bytesWritten: number;
  seconds: number;
}

export async function loadArchive(options: LoadOptions): Promise<LoadSummary> {
  // Prune spares leased digests: everything this load writes stays until its names are recorded.
  const lease = await options.store.lease(undefined, []);
  try {
    return await loadLeased(options, lease);
  } finally {
    await lease.release();
  }
}

async function loadLeased(options: LoadOptions, lease: Lease): Promise<LoadSummary> {
  const started = performance.now();
  const { store, source } = options;
  const emit = options.onEvent ?? (() => {});
  const ingest = new EntryIngest(store, source, emit, lease);
  const stop = () => options.input.destroy(interrupted());
  options.signal?.addEventListener("abort", stop, { once: true });
  let contents: ArchiveContents;
  try {
    contents = await readArchive({ store, input: options.input, source, ingest });
  } finally {
    options.signal?.removeEventListener("abort", stop);
  }
  if (options.signal?.aborted) throw interrupted();

  const ctx: PlanContext = {
    contents,
    store,
    source,
    platform: options.platform ?? hostPlatform(),
    normalizeName: options.normalizeName,
  };
  const manifestJson = contents.files.get("manifest.json");
  const dockerItems =
    manifestJson === undefined
      ? undefined
      : parseManifestJson(ctx, await smallFileBytes(ctx, manifestJson, "manifest.json"));
  let format: LoadSummary["format"];
  let planned: PlannedImage[];
  if (contents.files.has("index.json")) {
    format = "oci";
    planned = await planLayoutImages(
      ctx,
      dockerItems ? dockerNamesByConfig(ctx, dockerItems) : new Map(),
    );
  } else if (dockerItems !== undefined) {
    format = "docker";
    planned = await planDockerImages(ctx, dockerItems);
  } else {
    throw archiveInvalid(
      source,
      "it has neither index.json (an OCI image layout) nor manifest.json (a docker save archive)",
      {
        hint: "write the archive with ferry save, docker save or skopeo copy … oci-archive:FILE:NAME",
      },
    );
  }

  // Everything checked: now write what was built and record the names.
  if (options.signal?.aborted) throw interrupted();
  for (const image of planned) {
    for (const blob of image.blobs) {
      await lease.add([blob.digest]);
      await ingest.writeHeld(blob.digest, blob.bytes);
    }
  }
  const images: LoadedImage[] = [];
  const unnamed: LoadSummary["unnamed"] = [];
  for (const image of planned) {
    const base = { digest: image.descriptor.digest, configDigest: image.configDigest };
    if (image.names.length === 0) {
      unnamed.push(base);
      emit({ type: "unnamed", ...base });
      continue;
    }
    for (const reference of new Set(image.names)) {
      await store.recordImage(reference, image.descriptor, image.sourceDigest);
      images.push({ reference, ...base });
      emit({ type: "image", reference, ...base });
    }
  }
  const written = ingest.written;
  return {
    format,
    images,
    unnamed,
    blobsWritten: written.size,
    blobsSkipped: [...ingest.skipped].filter((d) => !written.has(d)).length,
    bytesWritten: ingest.bytesWritten,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}

function interrupted(): FerryError {
  return new FerryError("FERRY_INTERRUPTED", "interrupted; nothing was recorded");
}
