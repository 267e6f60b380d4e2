/**
 * List, then watch from the list's resourceVersion (BOOKMARKs requested so a quiet watch
 * resumes from a recent version); a 410 Gone or any failure relists after a backoff. The
 * caller sees the whole current set after every change (level-triggered).
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
  readonly onError: (error: unknown) => void;
}

const BACKOFF_MS = [200, 500, 1000, 2000, 5000];

export class CollectionWatch<T extends Meta> {
  readonly #o: CollectionWatchOptions<T>;
  readonly #items = new Map<string, T>();
  #stopped = false;
  #controller: AbortController | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: CollectionWatchOptions<T>) {
    this.#o = options;
  }

  get items(): T[] {
    return [...this.#items.values()];
  }

  /** Resolves after the first list (or rejects when it fails). */
  async start(): Promise<void> {
    await this.#relist();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#controller?.abort();
  }

  async #relist(): Promise<void> {
    const list = await this.#o.list();
    this.#items.clear();
    for (const item of list.items) this.#items.set(keyOf(item), item);
    this.#o.onChange(this.items);
    await this.#watch(list.metadata?.resourceVersion ?? "");
  }

  #retry(error: unknown): void {
    if (this.#stopped) return;
    if (error !== undefined) this.#o.onError(error);
    const delay = BACKOFF_MS[Math.min(this.#failures++, BACKOFF_MS.length - 1)];
    this.#timer = setTimeout(() => {
      this.#relist().catch((e: unknown) => this.#retry(e));
    }, delay);
  }

  async #watch(from: string): Promise<void> {
    if (this.#stopped) return;
    let resourceVersion = from;
    let gone = false;
    const watch = new Watch(this.#o.config);
    const query: Record<string, string | boolean> = { allowWatchBookmarks: true, resourceVersion };
    if (this.#o.labelSelector) query["labelSelector"] = this.#o.labelSelector;
    if (this.#o.fieldSelector) query["fieldSelector"] = this.#o.fieldSelector;
    this.#controller = await watch.watch(
      this.#o.path,
      query,
      (type: string, object: T & { code?: number }) => {
        if (type === "ERROR") {
          gone = true; // 410 Gone (or another error): start over from a fresh list
          return;
        }
        this.#failures = 0;
        const rv = object.metadata?.resourceVersion;
        if (rv) resourceVersion = rv;
        if (type === "BOOKMARK") return;
        if (type === "DELETED") this.#items.delete(keyOf(object));
        else this.#items.set(keyOf(object), object);
        this.#o.onChange(this.items);
      },
      (error: unknown) => {
        if (this.#stopped) return;
        if (gone || error) this.#retry(gone ? undefined : error);
        else this.#watch(resourceVersion).catch((e: unknown) => this.#retry(e)); // server closed: resume
      },
    );
  }
}

function keyOf(o: Meta): string {
  return `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}
