/**
 * What a registry push sets in motion: the image it names joins the pull queue (with the
 * list's settings when it is listed, else optional), and its targets are told a new version
 * exists (freshness.ts). Distribution announces a manifest push before it links the tag, so
 * a pull that finds the tag not there yet, or (a re-pushed tag) still at the digest it had, is
 * tried again a few times, briefly.
 */
import { isFerryError } from "../observe/index.ts";
import { formatReference, repositoryName } from "../reference/index.ts";
import type { Target } from "../runtime/index.ts";
import type { FreshnessGate } from "./freshness.ts";
import type { PullQueue } from "./queue.ts";
import type { AgentState } from "./state.ts";
import type { ImageEntry, ImageList, WarmResult } from "./types.ts";
import type { PushedImage, WebhookKind } from "./webhooks.ts";

const NOT_THERE_YET: ReadonlySet<string> = new Set([
  "FERRY_MANIFEST_UNKNOWN",
  "FERRY_NAME_UNKNOWN",
]);
/** Waits before each further attempt: about 8 s in all. */
export const PUSH_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 4000];

export interface PushHandlerOptions {
  readonly queue: PullQueue;
  readonly state: AgentState;
  readonly gate: FreshnessGate;
  readonly targets: readonly Target[];
  readonly list: () => ImageList;
  readonly log: (entry: Record<string, unknown>) => void;
  readonly delays?: readonly number[];
}

export function createPushHandler(
  o: PushHandlerOptions,
): (images: readonly PushedImage[], kind: WebhookKind) => void {
  const delays = o.delays ?? PUSH_RETRY_DELAYS_MS;
  const pull = (entry: ImageEntry, reason: string, digest: string | undefined, attempt: number) => {
    let done: Promise<WarmResult[]>;
    try {
      done = o.queue.add(entry, reason).done;
    } catch (err) {
      if (isFerryError(err, "FERRY_INTERRUPTED")) return; // shutting down
      throw err;
    }
    void done.then((results) => {
      const early = results.some((r) => NOT_THERE_YET.has(r.error?.code ?? ""));
      const stale =
        digest !== undefined &&
        results.some((r) => r.state === "pulled" && r.digest !== undefined && r.digest !== digest);
      const delay = delays[attempt];
      if (!(early || stale) || delay === undefined) return;
      o.log({
        level: "debug",
        msg: "pushed image not there yet; trying again",
        image: entry.text,
        delay,
        ...(stale ? { pulled: "the tag's previous digest", announced: digest } : {}),
      });
      setTimeout(() => {
        // The stale pull settled the announcement: the targets are told again.
        if (stale) o.gate.announce(entry.ref, digest, o.targets);
        pull(entry, reason, digest, attempt + 1);
      }, delay).unref();
    });
  };
  return (images, kind) => {
    const list = o.list();
    for (const pushed of images) {
      const name = formatReference(pushed.ref);
      const listed = list.images.find((e) => formatReference(e.ref) === name);
      // A new tag of a listed repository is pulled for the platform the list gives it.
      const sibling = list.images.find((e) => repositoryName(e.ref) === repositoryName(pushed.ref));
      const entry: ImageEntry = listed ?? {
        text: name,
        ref: pushed.ref,
        platform: sibling?.platform,
        required: false,
      };
      if (listed === undefined) o.state.addWebhookImage(entry);
      o.gate.announce(pushed.ref, pushed.digest, o.targets);
      pull(entry, `webhook:${kind}`, pushed.digest, 0);
    }
  };
}
