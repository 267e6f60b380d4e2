import type { Reference } from "../reference/index.ts";
import type { TargetKind } from "../runtime/index.ts";

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
