import type { Reference } from "../reference/index.ts";
import type { TargetKind, TargetPullOptions } from "../runtime/index.ts";

/** One entry of an image list (images.yaml). */
export interface ImageEntry {
  /** As written in the list. */
  readonly text: string;
  readonly ref: Reference;
  /** `os/arch[/variant]`; the target's own platform when absent. */
  readonly platform: string | undefined;
  /** Required images gate readiness and are pinned against pruning. Default true. */
  readonly required: boolean;
}

export interface ImageList {
  readonly images: readonly ImageEntry[];
  /** Targets named in the file, if any (flags override). */
  readonly targets: readonly TargetKind[] | undefined;
  /** Where it came from, for messages. */
  readonly source: string;
}

export type WarmState = "present" | "pulled" | "failed" | "missing" | "pulling";

/** The outcome for one image in one target. */
export interface WarmResult {
  readonly image: string;
  readonly target: TargetKind;
  readonly state: WarmState;
  readonly required: boolean;
  readonly digest?: string;
  readonly seconds?: number;
  readonly error?: { code: string; message: string };
  /** While pulling, where a target can tell (ferry's store): bytes in place of the image's total. */
  readonly progress?: PullProgress;
  /** Bytes this pull downloaded, where a target can tell. */
  readonly bytes?: number;
  /** Of `bytes`, those that other nodes (peers) delivered. */
  readonly bytesFromPeers?: number;
  /** The mirror (base URL) the pull went through, where a target can tell (ferry's store). */
  readonly via?: string;
  /** The warm pinned the image in the target (required images, targets that pin). */
  readonly pinned?: boolean;
}

/**
 * Pull options a target may read beyond the runtime's: ferry's store reports progress
 * (runtimes pulling for themselves do not say).
 */
export interface ProgressPullOptions extends TargetPullOptions {
  onProgress?: (progress: PullProgress) => void;
}

export interface PullProgress {
  /** Bytes of the image in place: held before, or fetched so far. */
  readonly done: number;
  readonly total: number;
  /** Bytes this pull has fetched so far. */
  readonly downloaded: number;
  /** Of `downloaded`, bytes peers delivered (known when the pull ends). */
  readonly fromPeers?: number;
  /** The mirror (base URL) the pull went through, when one answered instead of the registry. */
  readonly via?: string;
  readonly bytesPerSecond: number;
}

/**
 * Warms images into targets (what `ferry warm -f` and every agent trigger run):
 * the agent daemon gets this from the warm module and calls it for schedules,
 * webhooks and list changes.
 */
export type WarmFunction = (
  images: readonly ImageEntry[],
  options: { signal?: AbortSignal; onResult?: (r: WarmResult) => void },
) => Promise<WarmResult[]>;
