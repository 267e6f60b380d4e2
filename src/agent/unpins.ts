/**
 * Unpinning, level-triggered: an image the list no longer requires stays due for unpinning in
 * each target (containerd's pin label, the store's annotation) until that target confirms it,
 * whatever failed on the way (containerd restarting, the store's disk full). Every pass (a list
 * reload, a scheduled warm) tries what is still due, and so does a backoff timer of its own.
 */
import { parseReference, type Reference } from "../reference/index.ts";
import { type BackoffPolicy, backoffDelay } from "./backoff.ts";

/** Where a pin can be taken off: a runtime target, or ferry's store. */
export interface UnpinTarget {
  readonly name: string;
  /** Resolves once the image is not pinned there (true: a pin was removed). */
  unpin(ref: Reference): Promise<boolean>;
}

export interface PendingUnpinsOptions {
  readonly targets: readonly UnpinTarget[];
  readonly backoff: BackoffPolicy;
  readonly log: (entry: Record<string, unknown>) => void;
  /** After a pass that took a pin off: a runtime's names of one image share its pin, so a
   * required image sharing it is pinned again. */
  readonly onUnpinned?: () => void;
  readonly random?: () => number;
}

export class PendingUnpins {
  readonly #o: PendingUnpinsOptions;
  /** Image → names of the targets that have not confirmed its unpinning yet. */
  readonly #due = new Map<string, Set<string>>();
  #failedPasses = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(options: PendingUnpinsOptions) {
    this.#o = options;
  }

  /** The image is no longer required: unpin it in every target. */
  add(image: string): void {
    this.#due.set(image, new Set(this.#o.targets.map((t) => t.name)));
  }

  /** The image is required again: its pin stays. */
  keep(image: string): void {
    this.#due.delete(image);
  }

  /** Images some target has not confirmed unpinned yet. */
  get pending(): string[] {
    return [...this.#due.keys()];
  }

  /** One pass over what is due; a pass asked for while one runs follows it. */
  reconcile(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#passes().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #passes(): Promise<void> {
    do {
      this.#again = false;
      await this.#pass();
    } while (this.#again && !this.#stopped);
  }

  async #pass(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    let failed = false;
    let unpinned = false;
    for (const [image, names] of [...this.#due]) {
      for (const target of this.#o.targets) {
        if (this.#stopped) return;
        if (!names.has(target.name) || this.#due.get(image) !== names) continue;
        try {
          const removed = await target.unpin(parseReference(image));
          names.delete(target.name);
          unpinned ||= removed;
          this.#o.log({ level: "info", msg: "unpinned", image, target: target.name, removed });
        } catch (err) {
          failed = true;
          this.#o.log({
            level: "warn",
            msg: "unpin failed: tried again later",
            image,
            target: target.name,
            error: err instanceof Error ? err.message : String(err),
            ...codeOf(err),
          });
        }
      }
      if (names.size === 0 && this.#due.get(image) === names) this.#due.delete(image);
    }
    if (unpinned) this.#o.onUnpinned?.();
    if (!failed) {
      this.#failedPasses = 0;
      return;
    }
    const delay = backoffDelay(this.#o.backoff, this.#failedPasses++, this.#o.random);
    this.#timer = setTimeout(() => void this.reconcile(), delay);
    this.#timer.unref();
  }
}

function codeOf(err: unknown): { code?: string } {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? { code } : {};
}
