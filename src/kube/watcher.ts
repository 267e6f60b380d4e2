/**
 * ferry's one informer. List, then watch from the list's resourceVersion (BOOKMARKs requested
 * so a quiet watch resumes from a recent version). A watch that ends normally — the server's
 * `timeoutSeconds`, the server closing it, the client's idle timeout — is reopened from the last
 * resourceVersion seen; only a 410 Gone (that version is compacted away) or an ERROR event lists
 * again, and that relist reports what changed while the watch was away as the differences they
 * are. Other failures reopen the watch after a backoff. The caller sees the whole current set
 * after every change (level-triggered, `onChange`) and, if it asks, each change with the version
 * it replaces (`onDelta`). The start fails closed: no caller acts before the first list.
 */
import { type KubeConfig, Watch } from "@kubernetes/client-node";

export interface Meta {
  metadata?:
    | {
        name?: string | undefined;
        namespace?: string | undefined;
        resourceVersion?: string | undefined;
      }
    | undefined;
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface CollectionWatchOptions<T extends Meta> {
  readonly config: KubeConfig;
  /** e.g. /api/v1/namespaces/ferry-system/configmaps */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly list: () => Promise<{
    items: T[];
    metadata?: { resourceVersion?: string | undefined } | undefined;
  }>;
  readonly onChange: (items: readonly T[]) => void;
  /** Each change with the cached version it replaces; after a relist, the differences. */
  readonly onDelta?: (type: ChangeType, object: T, previous: T | undefined) => void;
  readonly onError: (error: unknown) => void;
  /**
   * false (default): start() rejects when the first list fails, so the caller fails closed and
   * says why. true: start() keeps listing after a backoff (each failure to onError) and resolves
   * once listed, or once stopped without a list (a controller that waits for its caches).
   */
  readonly retryFirstList?: boolean;
  /** The server ends each watch after this long (default: 5 to 10 minutes, spread like client-go's). */
  readonly watchTimeoutSeconds?: number;
}

const BACKOFF_MS = [200, 500, 1000, 2000, 5000];
const MIN_WATCH_TIMEOUT_S = 300;
/** The client gives up on a silent stream only well after the server should have ended it. */
const CLIENT_IDLE_MARGIN_MS = 60_000;

type Next = "resume" | "relist";

export class CollectionWatch<T extends Meta> {
  readonly #o: CollectionWatchOptions<T>;
  readonly #items = new Map<string, T>();
  #stopped = false;
  #controller: AbortController | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #resourceVersion = "";
  /** Ends a first-list backoff early (stop). */
  #wake: (() => void) | undefined;

  constructor(options: CollectionWatchOptions<T>) {
    this.#o = options;
  }

  get items(): T[] {
    return [...this.#items.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(`${namespace ?? ""}/${name}`);
  }

  /** Resolves after the first list (or rejects when it fails, unless retryFirstList). */
  async start(): Promise<void> {
    if (this.#o.retryFirstList !== true) return this.#relist();
    for (;;) {
      try {
        return await this.#relist();
      } catch (error) {
        if (this.#stopped) return;
        this.#o.onError(error);
        await new Promise<void>((resolve) => {
          const delay = BACKOFF_MS[Math.min(this.#failures++, BACKOFF_MS.length - 1)];
          this.#timer = setTimeout(resolve, delay);
          this.#wake = resolve;
        });
        if (this.#stopped) return;
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    this.#controller?.abort();
  }

  async #relist(): Promise<void> {
    const list = await this.#o.list();
    if (this.#stopped) return;
    const before = new Map(this.#items);
    this.#items.clear();
    for (const item of list.items) this.#items.set(keyOf(item), item);
    this.#resourceVersion = list.metadata?.resourceVersion ?? "";
    const delta = this.#o.onDelta;
    if (delta !== undefined) {
      for (const [key, item] of this.#items) {
        const previous = before.get(key);
        if (previous === undefined) delta("ADDED", item, undefined);
        else if (previous.metadata?.resourceVersion !== item.metadata?.resourceVersion)
          delta("MODIFIED", item, previous);
      }
      for (const [key, previous] of before)
        if (!this.#items.has(key)) delta("DELETED", previous, previous);
    }
    this.#o.onChange(this.items);
    await this.#watch();
  }

  /** After a backoff: list again, or reopen the watch from the last resourceVersion. */
  #later(next: Next, error?: unknown): void {
    if (this.#stopped) return;
    if (error !== undefined) this.#o.onError(error);
    const delay = BACKOFF_MS[Math.min(this.#failures++, BACKOFF_MS.length - 1)];
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#next(next), delay);
  }

  #next(next: Next): void {
    if (this.#stopped) return;
    const step = next === "relist" || this.#resourceVersion === "" ? this.#relist() : this.#watch();
    step.catch((e: unknown) =>
      this.#later(isGone(e) ? "relist" : "resume", isGone(e) ? undefined : e),
    );
  }

  async #watch(): Promise<void> {
    if (this.#stopped) return;
    let outcome: { next: Next; error?: unknown } | undefined;
    let events = 0;
    let ended = false;
    const watch = new Watch(this.#o.config);
    const timeoutSeconds =
      this.#o.watchTimeoutSeconds ??
      MIN_WATCH_TIMEOUT_S + Math.floor(Math.random() * MIN_WATCH_TIMEOUT_S);
    // client-node 2.0.1 aborts a stream after 30 s without data (a private field): a quiet
    // collection sends nothing for longer than that, so it waits past the server's own timeout.
    const idle = watch as unknown as { requestTimeoutMs?: number };
    if (typeof idle.requestTimeoutMs === "number")
      idle.requestTimeoutMs = timeoutSeconds * 1000 + CLIENT_IDLE_MARGIN_MS;
    const query: Record<string, string | number | boolean> = {
      allowWatchBookmarks: true,
      resourceVersion: this.#resourceVersion,
      timeoutSeconds,
    };
    if (this.#o.labelSelector) query["labelSelector"] = this.#o.labelSelector;
    if (this.#o.fieldSelector) query["fieldSelector"] = this.#o.fieldSelector;
    const controller = await watch.watch(
      this.#o.path,
      query,
      (type: string, object: T & { code?: number }) => {
        if (type === "ERROR") {
          // 410 Gone: the version is compacted away; any other error event: start over too
          outcome ??=
            object.code === 410
              ? { next: "relist" }
              : { next: "relist", error: new Error(`watch error: ${JSON.stringify(object)}`) };
          return;
        }
        events++;
        this.#failures = 0;
        const rv = object.metadata?.resourceVersion;
        if (rv) this.#resourceVersion = rv;
        if (type === "BOOKMARK") return;
        const key = keyOf(object);
        const previous = this.#items.get(key);
        if (type === "DELETED") this.#items.delete(key);
        else this.#items.set(key, object);
        if (type === "ADDED" || type === "MODIFIED" || type === "DELETED")
          this.#o.onDelta?.(type, object, previous);
        this.#o.onChange(this.items);
      },
      (error: unknown) => {
        ended = true;
        if (this.#stopped) return;
        if (outcome !== undefined) return this.#later(outcome.next, outcome.error);
        if (isGone(error)) return this.#later("relist");
        if (error !== null && error !== undefined && !isTimeout(error))
          return this.#later("resume", error);
        // The server's timeout, its closing the stream, or the client's idle timeout: carry on
        // from the last version seen (at once, unless the watch ended without a single event).
        if (events > 0) this.#next("resume");
        else this.#later("resume");
      },
    );
    // stop() while the request was on its way had no controller to abort; a watch that already
    // ended may have a successor, whose controller this must not overwrite.
    if (this.#stopped || ended) controller.abort();
    else this.#controller = controller;
  }
}

function isGone(error: unknown): boolean {
  const e = error as { statusCode?: unknown; code?: unknown } | null | undefined;
  return e?.statusCode === 410 || e?.code === 410;
}

function isTimeout(error: unknown): boolean {
  const name = (error as { name?: unknown } | null | undefined)?.name;
  return name === "TimeoutError" || name === "AbortError";
}

function keyOf(o: Meta): string {
  return `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}
