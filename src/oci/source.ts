import type { Readable } from "node:stream";
import type { Descriptor } from "./manifest.ts";

/** Bytes [start, end) of a blob. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** A manifest as its source holds it: the exact bytes (copied byte for byte, so digests never change). */
export interface SourceManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
}

/**
 * A place blobs come from: a registry repository, the store, a peer node, an archive.
 * Every implementation passes the same conformance suite (test/fixtures/blob-source-conformance.ts).
 */
export interface BlobSource {
  /**
   * The whole blob, verified: the stream fails (FERRY_DIGEST_MISMATCH, FERRY_SIZE_MISMATCH)
   * instead of ending when the bytes are not `desc`. With `range`, bytes [start, end),
   * never more (`readRange` also refuses fewer); no digest covers a range, so whoever
   * decodes it verifies what it decodes (eStargz chunk digests). A blob the source lacks
   * is FERRY_BLOB_UNKNOWN; a range outside the blob, FERRY_INVALID_ARGUMENT.
   */
  open(desc: Descriptor, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /** The blob's size, or undefined when the source does not hold it. */
  stat(digest: string, signal?: AbortSignal): Promise<number | undefined>;
}

/** A blob source that also holds manifests, by tag (its own names) or by digest. */
export interface ImageSource extends BlobSource {
  /**
   * The manifest `reference` (a tag or a digest) names; by digest, its bytes are that
   * digest. One the source lacks is FERRY_MANIFEST_UNKNOWN.
   */
  manifest(reference: string, signal?: AbortSignal): Promise<SourceManifest>;
}

/** Where to GET one blob instead of the upstream (a peer node's listener), with the headers to send. */
export interface BlobSourceLocation {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** No bytes for this long abandons the source; the pull resumes elsewhere with a Range. */
  readonly idleTimeoutMs: number;
  /** Who serves it, for messages and metrics. */
  readonly peer: string;
}
