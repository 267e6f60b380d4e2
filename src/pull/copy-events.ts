/** What a copy reports while it runs: like a pull's events, plus the write side (mounts, uploads, manifests). */
export type CopyBlobStatus =
  | "exists"
  | "mounted"
  | "waiting"
  | "downloading"
  | "uploading"
  | "complete";

export type CopyEvent =
  | {
      type: "resolved";
      source: string;
      destination: string;
      digest: string;
      mediaType: string;
      into: "registry" | "store";
    }
  | {
      type: "blob";
      /** The destination reference. */
      reference: string;
      digest: string;
      kind: "config" | "layer";
      size: number;
      /** exists: the destination has it; mounted: linked from `from` on the same registry. */
      status: CopyBlobStatus;
      current?: number;
      /** The repository a mounted blob came from. */
      from?: string;
    }
  | {
      type: "manifest";
      reference: string;
      /** What it was put under: the destination's tag, or its own digest (platforms of an index). */
      tag: string;
      digest: string;
      mediaType: string;
      size: number;
      platform?: string;
    }
  | { type: "retry"; reference: string; digest: string; attempt: number; reason: string };

export interface CopySummary {
  source: string;
  destination: string;
  /** Digest of what the destination reference now names (unchanged from the source). */
  digest: string;
  mediaType: string;
  /** Bytes of that manifest (0 for a pull, which reports the platform it stored instead). */
  size: number;
  /** Manifests put (an index and each of its images count one each). */
  manifests: number;
  bytesUploaded: number;
  /** Blob bytes fetched from the source registry (staged in the store's ingest area, or pulled into the store). */
  bytesDownloaded: number;
  blobsUploaded: number;
  /** Blobs the destination already had (for a pull: the store). */
  blobsSkipped: number;
  blobsMounted: number;
  seconds: number;
}
