/** What a pull reports while it runs; renderers (CLI, agent status) subscribe to these. */
export type BlobStatus = "exists" | "waiting" | "downloading" | "complete";

export type PullEvent =
  | { type: "resolved"; reference: string; digest: string; mediaType: string }
  | {
      type: "blob";
      reference: string;
      digest: string;
      kind: "config" | "layer";
      size: number;
      status: BlobStatus;
      current?: number;
      resumedFrom?: number;
    }
  | { type: "retry"; reference: string; digest: string; attempt: number; reason: string };

export interface PullSummary {
  /** Fully qualified reference that was pulled. */
  reference: string;
  /** Digest the reference resolved to at the registry (an index for multi-platform images). */
  digest: string;
  /** The platform-specific image manifest recorded in the store. */
  manifestDigest: string;
  status: "downloaded" | "up-to-date";
  bytesDownloaded: number;
  /** Of `bytesDownloaded`, the bytes that came from peer nodes (the rest came from the registry). */
  bytesFromPeers?: number;
  blobsDownloaded: number;
  blobsSkipped: number;
  seconds: number;
}
