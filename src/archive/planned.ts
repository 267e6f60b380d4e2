/** What loading decided, image by image, before anything is recorded; and the checks both formats share. */
import { FerryError } from "../observe/index.ts";
import type { Descriptor, Platform } from "../oci/index.ts";
import type { Store } from "../store/index.ts";
import { type ArchiveContents, MANIFEST_MAX_BYTES } from "./contents.ts";
import { blobPathOf } from "./entry-path.ts";
import { archiveInvalid } from "./errors.ts";
import type { TakenFile } from "./ingest.ts";

export interface PlannedImage {
  /** Normalized references to record; empty when the archive names the image nowhere. */
  readonly names: string[];
  /** The image manifest, as index.json will hold it. */
  readonly descriptor: Descriptor;
  readonly sourceDigest: string;
  readonly configDigest: string;
  /** Small blobs to put in the store before recording: built manifests, held configs and layers. */
  readonly blobs: ReadonlyArray<{ digest: string; bytes: Buffer }>;
}

export interface PlanContext {
  readonly contents: ArchiveContents;
  readonly store: Store;
  readonly source: string;
  readonly platform: Platform;
  /** Normalizes a name the archive gives an image (throws when it is not a reference). */
  normalizeName(text: string): string;
}

/** The archive's blob for a descriptor, present and of the promised size. */
export function requireBlob(ctx: PlanContext, d: Descriptor, where: string): TakenFile {
  const file = ctx.contents.blob(d.digest);
  if (file === undefined) {
    throw archiveInvalid(
      ctx.source,
      `${where} refers to ${d.digest}, which is not in the archive`,
      {
        entry: blobPathOf(d.digest),
      },
    );
  }
  if (file.size !== d.size) {
    throw archiveInvalid(
      ctx.source,
      `it is ${file.size} bytes, but ${where} says ${d.size} (${d.digest})`,
      { entry: file.path },
    );
  }
  return file;
}

/** The bytes of a small file: held in memory, or read back from the store where it was committed. */
export async function smallFileBytes(
  ctx: PlanContext,
  file: TakenFile,
  what: string,
  max = MANIFEST_MAX_BYTES,
): Promise<Buffer> {
  if (file.bytes !== undefined) return file.bytes;
  if (file.size > max) {
    throw archiveInvalid(ctx.source, `it is ${file.size} bytes, too large for ${what}`, {
      entry: file.path,
    });
  }
  return ctx.store.readBlob(file.digest);
}

/** Runs a parser on archive content; its FerryErrors become archive refusals that name the entry. */
export function parsedOrRefused<T>(ctx: PlanContext, entry: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof FerryError && err.code !== "FERRY_ARCHIVE_INVALID") {
      throw archiveInvalid(ctx.source, err.message, { entry, cause: err });
    }
    throw err;
  }
}

/** A name from the archive, normalized; a name that is no reference refuses the archive. */
export function normalizedName(ctx: PlanContext, text: string, entry: string): string {
  return parsedOrRefused(ctx, entry, () => ctx.normalizeName(text));
}

export function parseJson(ctx: PlanContext, bytes: Buffer, entry: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8")) as unknown;
  } catch (cause) {
    throw archiveInvalid(ctx.source, "it is not valid JSON", { entry, cause });
  }
}
