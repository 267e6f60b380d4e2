/**
 * What the node's runtime holds of the wanted images, asked image by image (node.status.images
 * is capped at 50), with the pulls in flight and their failures; and the startup taint
 * reconciled from it, the required images pinned before the node opens.
 */
import type { V1Node } from "@kubernetes/client-node";
import { isFerryError } from "../observe/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import type { ImagePresence, Target } from "../runtime/index.ts";
import type { WantedImage } from "./image-sources.ts";
import type { KubeMetrics } from "./metrics.ts";
import type { NodeImageStatus } from "./prepull.ts";
import type { StartupTaint } from "./startup-taint.ts";

export interface NodePresenceOptions {
  readonly nodeName: string;
  readonly taintKey?: string | undefined;
  readonly taint?: StartupTaint | undefined;
  readonly metrics: KubeMetrics;
  readonly warnOnce: (key: string, entry: Record<string, unknown> & { msg: string }) => void;
}

export class NodePresence {
  readonly #o: NodePresenceOptions;
  readonly #pulling = new Set<string>();
  readonly #failures = new Map<string, string>();
  readonly #present = new Map<string, ImagePresence>();
  #requiredPresent = 0;
  #requiredTotal = 0;
  /** Ask the runtime about every image, not only those not known present (resync). */
  #fullCheck = true;

  constructor(options: NodePresenceOptions) {
    this.#o = options;
  }

  get requiredPresent(): number {
    return this.#requiredPresent;
  }

  get requiredTotal(): number {
    return this.#requiredTotal;
  }

  /** The next refresh asks about every image. */
  checkAll(): void {
    this.#fullCheck = true;
  }

  pulling(image: string): void {
    this.#pulling.add(image);
  }

  pulled(image: string): void {
    this.#pulling.delete(image);
    this.#failures.delete(image);
  }

  failed(image: string, error: unknown): void {
    this.#pulling.delete(image);
    this.#failures.set(image, reasonOf(error));
  }

  /** Asks the runtime; after a pull only about images not known present, else about all. */
  async refresh(
    runtime: Target,
    node: V1Node,
    wanted: ReadonlyMap<string, WantedImage>,
  ): Promise<void> {
    // The taint is removed only on a fresh answer for every required image.
    const key = this.#o.taintKey;
    const full = this.#fullCheck || (node.spec?.taints?.some((t) => t.key === key) ?? false);
    this.#fullCheck = false;
    for (const image of wanted.keys()) {
      if (!full && this.#present.has(image)) continue;
      try {
        const { entry } = wanted.get(image)!;
        const presence = await runtime.status(entry.ref, undefined, entry.platform);
        if (presence.present) this.#present.set(image, presence);
        else this.#present.delete(image);
      } catch (error) {
        this.#present.delete(image);
        this.#o.warnOnce(`status:${image}`, {
          msg: "runtime did not say whether it holds the image",
          image,
          error: String(error),
        });
      }
    }
    for (const image of [...this.#present.keys()])
      if (!wanted.has(image)) this.#present.delete(image);
    const required = requiredImages(wanted);
    this.#requiredTotal = required.length;
    this.#requiredPresent = required.filter((i) => this.#present.has(i)).length;
    const present = [...wanted.keys()].filter((i) => this.#present.has(i)).length;
    this.#o.metrics.images(this.#o.nodeName, present, wanted.size - present);
  }

  /** The startup taint from the last refresh; required images pinned before it goes. */
  async reconcileTaint(
    runtime: Target,
    node: V1Node,
    wanted: ReadonlyMap<string, WantedImage>,
    unreadable: readonly string[],
  ): Promise<void> {
    const required = requiredImages(wanted);
    const missing = required.filter((i) => !this.#present.has(i));
    // Pinned before the node opens: kubelet's GC must not take what the taint waited for.
    await this.#o.taint?.reconcile(node, required.length, missing, unreadable, async () => {
      for (const image of required) {
        const ref = wanted.get(image)?.entry.ref;
        if (ref === undefined || runtime.pin === undefined) continue;
        await runtime.pin(ref).catch((error: unknown) =>
          this.#o.warnOnce(`pin:${image}`, {
            msg: "required image not pinned",
            image,
            error: String(error),
          }),
        );
      }
    });
  }

  /** This node's state of an image, live. */
  imageStatus(text: string): NodeImageStatus {
    let image: string;
    try {
      image = formatReference(parseReference(text));
    } catch (error) {
      return { image: text, state: "failed", reason: `InvalidReference: ${String(error)}` };
    }
    const presence = this.#present.get(image);
    if (presence !== undefined) {
      const digest = presence.repoDigests?.[0]?.split("@")[1] ?? presence.id;
      return { image: text, state: "present", ...(digest === undefined ? {} : { digest }) };
    }
    if (this.#pulling.has(image)) return { image: text, state: "pulling" };
    const failure = this.#failures.get(image);
    if (failure !== undefined) return { image: text, state: "failed", reason: failure };
    return { image: text, state: "missing" };
  }
}

function requiredImages(wanted: ReadonlyMap<string, WantedImage>): string[] {
  return [...wanted.entries()].filter(([, w]) => w.entry.required).map(([image]) => image);
}

function reasonOf(error: unknown): string {
  if (isFerryError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
