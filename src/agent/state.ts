/**
 * What the agent knows about each image in each target, built from warm results: the
 * state `/status` shows and the readiness `/readyz` answers. Pure bookkeeping, no I/O.
 */
import { formatReference } from "../reference/index.ts";
import type { TargetKind } from "../runtime/index.ts";
import type { PendingRetry } from "./retries.ts";
import type { ImageEntry, PullProgress, WarmResult, WarmState } from "./types.ts";

export interface TargetStatus {
  /** "unknown" until the first result for this image in this target. */
  readonly state: WarmState | "unknown";
  /** Whether the image was there at the last look (a re-pull in flight keeps it true). */
  readonly present: boolean;
  readonly digest?: string;
  readonly lastPulled?: string;
  readonly lastChecked?: string;
  readonly seconds?: number;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at: string };
  /** Pinned by the agent at its last warm (required images, in targets that pin). */
  readonly pinned?: boolean;
  /** While pulling, where the target tells (ferry's store). */
  readonly progress?: PullProgress;
  /** After a failure: when the agent tries again on its own (retries.ts). */
  readonly retry?: PendingRetry;
}

export interface ImageStatus {
  readonly image: string;
  readonly required: boolean;
  readonly platform: string | undefined;
  /** Listed in the image list, or pulled because a webhook named it. */
  readonly source: "list" | "webhook";
  readonly targets: Readonly<Partial<Record<TargetKind, TargetStatus>>>;
}

export interface Readiness {
  readonly ready: boolean;
  readonly missing: ReadonlyArray<{
    readonly image: string;
    readonly target: TargetKind;
    readonly state: TargetStatus["state"];
    readonly error?: string;
  }>;
}

export interface ListChange {
  readonly added: readonly ImageEntry[];
  /** Listed before with other settings (required, platform). */
  readonly changed: readonly ImageEntry[];
  /** References no longer listed. */
  readonly removed: readonly string[];
  /** References that were required and no longer are (listed or not). */
  readonly unrequired: readonly string[];
}

const UNKNOWN: TargetStatus = { state: "unknown", present: false };

export class AgentState {
  #targets: readonly TargetKind[];
  readonly #images = new Map<string, ImageStatus>();
  /** Entries of the images only webhooks named, as their pushes made them. */
  readonly #webhookEntries = new Map<string, ImageEntry>();

  constructor(targets: readonly TargetKind[]) {
    this.#targets = targets;
  }

  get targets(): readonly TargetKind[] {
    return this.#targets;
  }

  /** Replaces the listed images; webhook-pulled ones stay. */
  setList(entries: readonly ImageEntry[]): ListChange {
    const next = new Map(entries.map((e) => [formatReference(e.ref), e]));
    const added: ImageEntry[] = [];
    const changed: ImageEntry[] = [];
    const removed: string[] = [];
    const unrequired: string[] = [];
    for (const [image, before] of this.#images) {
      if (before.source !== "list" || next.has(image)) continue;
      removed.push(image);
      if (before.required) unrequired.push(image);
      this.#images.delete(image);
    }
    for (const [image, entry] of next) {
      const before = this.#images.get(image);
      const listedBefore = before?.source === "list";
      if (!listedBefore) added.push(entry);
      else if (before.required !== entry.required || before.platform !== entry.platform) {
        changed.push(entry);
        if (before.required && !entry.required) unrequired.push(image);
      }
      this.#images.set(image, {
        image,
        required: entry.required,
        platform: entry.platform,
        source: "list",
        targets: before?.targets ?? {},
      });
      this.#webhookEntries.delete(image);
    }
    return { added, changed, removed, unrequired };
  }

  /** Remembers an image a webhook named that the list does not. */
  addWebhookImage(entry: ImageEntry): void {
    const image = formatReference(entry.ref);
    if (this.#images.has(image)) return;
    this.#webhookEntries.set(image, entry);
    this.#images.set(image, {
      image,
      required: false,
      platform: entry.platform,
      source: "webhook",
      targets: {},
    });
  }

  /** How a webhook-only image is pulled again (its retries); undefined once the list names it. */
  webhookEntry(image: string): ImageEntry | undefined {
    return this.#images.get(image)?.source === "webhook"
      ? this.#webhookEntries.get(image)
      : undefined;
  }

  /** The listed entry for a reference, if listed. */
  isListed(image: string): boolean {
    return this.#images.get(image)?.source === "list";
  }

  record(result: WarmResult, at: Date = new Date()): void {
    const image = this.#images.get(result.image);
    if (image === undefined) return; // removed from the list while it was being warmed
    const {
      progress: _progress,
      pinned: wasPinned,
      ...before
    } = image.targets[result.target] ?? UNKNOWN;
    const when = at.toISOString();
    const pinned = result.pinned ?? (wasPinned === true && image.required);
    const next: TargetStatus = {
      ...before,
      ...(pinned ? { pinned } : {}),
      ...(result.state === "pulling" && result.progress !== undefined
        ? { progress: result.progress }
        : {}),
      state: result.state,
      present: presentAfter(result, before.present),
      ...(result.state === "pulling" ? {} : { lastChecked: when }),
      ...(result.digest === undefined ? {} : { digest: result.digest }),
      ...(result.state === "pulled" ? { lastPulled: when } : {}),
      ...(result.seconds === undefined ? {} : { seconds: result.seconds }),
      ...(result.error === undefined ? {} : { lastError: { ...result.error, at: when } }),
    };
    this.#images.set(result.image, {
      ...image,
      targets: { ...image.targets, [result.target]: next },
    });
  }

  /** Shows (or, undefined, drops) the agent's next attempt at an image in a target. */
  setRetry(image: string, target: TargetKind, retry: PendingRetry | undefined): void {
    const status = this.#images.get(image);
    if (status === undefined) return;
    const { retry: _before, ...rest } = status.targets[target] ?? UNKNOWN;
    this.#images.set(image, {
      ...status,
      targets: { ...status.targets, [target]: retry === undefined ? rest : { ...rest, retry } },
    });
  }

  /** Ready when every required image is present in every target. */
  readiness(): Readiness {
    const missing: Array<Readiness["missing"][number]> = [];
    for (const image of this.#images.values()) {
      if (!image.required) continue;
      for (const target of this.#targets) {
        const t = image.targets[target] ?? UNKNOWN;
        if (t.present) continue;
        missing.push({
          image: image.image,
          target,
          state: t.state,
          ...(t.lastError === undefined ? {} : { error: t.lastError.message }),
        });
      }
    }
    return { ready: missing.length === 0, missing };
  }

  images(): ImageStatus[] {
    return [...this.#images.values()].map((i) => ({
      ...i,
      targets: Object.fromEntries(this.#targets.map((t) => [t, i.targets[t] ?? UNKNOWN])),
    }));
  }
}

/**
 * Whether the image is there after a result. A failed pull says nothing about the copy
 * already held (a registry down, a tag moved on and not yet pullable); a target that cannot
 * answer (its runtime down, the store unreadable) holds nothing usable.
 */
function presentAfter(result: WarmResult, before: boolean): boolean {
  if (result.state === "present" || result.state === "pulled") return true;
  if (result.state === "pulling") return before;
  if (result.state === "failed") {
    const code = result.error?.code ?? "";
    return before && !code.startsWith("FERRY_RUNTIME") && !code.startsWith("FERRY_STORE");
  }
  return false;
}
