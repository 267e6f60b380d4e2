/**
 * List, then watch, one resource type: the informer pattern with the parts ferry relies on that
 * the client library's ListWatch lacks — BOOKMARKs requested (so a quiet watch resumes from a
 * recent resourceVersion), a relist on 410 Gone that reports what changed while the watch was
 * away, and reconnection with backoff after any other failure instead of stopping.
 */
import { type KubeConfig, Watch } from "@kubernetes/client-node";

/** What the reflector needs of an object: its identity and version. */
export interface ObjectWithMeta {
  readonly metadata?:
    | {
        readonly name?: string | undefined;
        readonly namespace?: string | undefined;
        readonly resourceVersion?: string | undefined;
      }
    | undefined;
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface ListResult<T> {
  readonly items: readonly T[];
  readonly metadata?: { readonly resourceVersion?: string | undefined } | undefined;
}

export interface ReflectorOptions<T extends ObjectWithMeta> {
  readonly kubeConfig: KubeConfig;
  /** The watch path, e.g. /apis/apps/v1/deployments (all namespaces). */
  readonly path: string;
  readonly list: () => Promise<ListResult<T>>;
  readonly labelSelector?: string;
  /** Every change, with the cached version it replaces; after a relist, the differences. */
  readonly onChange: (type: ChangeType, object: T, previous: T | undefined) => void;
  readonly onError?: (error: unknown) => void;
  /** Server-side watch timeout; the watch is reopened from the last resourceVersion. */
  readonly watchTimeoutSeconds?: number;
}

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;

interface WatchEvent {
  readonly type: string;
  readonly object: ObjectWithMeta & { code?: number };
}

function keyOf(o: ObjectWithMeta): string {
  return `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}

export class Reflector<T extends ObjectWithMeta> {
  readonly #options: ReflectorOptions<T>;
  readonly #objects = new Map<string, T>();
  #resourceVersion = "";
  #stopped = false;
  #request: AbortController | undefined;
  #synced: Promise<void>;
  #resolveSynced!: () => void;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: ReflectorOptions<T>) {
    this.#options = options;
    this.#synced = new Promise((resolve) => {
      this.#resolveSynced = resolve;
    });
  }

  /** Starts listing and watching; resolves once the first list is in the cache. */
  start(): Promise<void> {
    this.#loop ??= this.#run();
    return this.#synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    // A start() still waiting for its first list returns (there will be none).
    this.#resolveSynced();
    this.#request?.abort();
    this.#wake?.();
    await this.#loop;
  }

  list(): T[] {
    return [...this.#objects.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(`${namespace ?? ""}/${name}`);
  }

  async #run(): Promise<void> {
    let backoff = BACKOFF_START_MS;
    while (!this.#stopped) {
      try {
        if (this.#resourceVersion === "") await this.#relist();
        const progressed = await this.#watchOnce();
        if (progressed) backoff = BACKOFF_START_MS;
      } catch (error) {
        if (this.#stopped) break;
        this.#options.onError?.(error);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  async #relist(): Promise<void> {
    const result = await this.#options.list();
    const seen = new Set<string>();
    for (const item of result.items) {
      const key = keyOf(item);
      seen.add(key);
      this.#apply(this.#objects.has(key) ? "MODIFIED" : "ADDED", item);
    }
    for (const [key, object] of [...this.#objects]) {
      if (!seen.has(key)) this.#apply("DELETED", object);
    }
    this.#resourceVersion = result.metadata?.resourceVersion ?? "";
    this.#resolveSynced();
  }

  #apply(type: ChangeType, object: T): void {
    const key = keyOf(object);
    const previous = this.#objects.get(key);
    if (type === "DELETED") this.#objects.delete(key);
    else {
      if (previous?.metadata?.resourceVersion === object.metadata?.resourceVersion && previous)
        return;
      this.#objects.set(key, object);
    }
    this.#options.onChange(type, object, previous);
  }

  /** One watch request; true when it delivered anything. Throws on failures worth a backoff. */
  #watchOnce(): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let progressed = false;
      const query: Record<string, string | number | boolean> = {
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#options.watchTimeoutSeconds ?? 300,
      };
      if (this.#options.labelSelector !== undefined) {
        query["labelSelector"] = this.#options.labelSelector;
      }
      const onEvent = (type: string, object: WatchEvent["object"]) => {
        if (type === "ERROR") {
          // 410 Gone: our resourceVersion was compacted away; list again.
          if (object.code === 410) this.#resourceVersion = "";
          this.#request?.abort();
          return;
        }
        progressed = true;
        const rv = object.metadata?.resourceVersion;
        if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") {
          this.#apply(type, object as T);
        }
        if (rv !== undefined && rv !== "") this.#resourceVersion = rv;
      };
      const onDone = (error: unknown) => {
        this.#request = undefined;
        if (this.#stopped) resolve(progressed);
        else if (error === null || error === undefined) resolve(progressed);
        else if (isGone(error)) {
          this.#resourceVersion = "";
          resolve(progressed);
        } else if (isAbortOrTimeout(error)) resolve(progressed);
        else reject(error);
      };
      new Watch(this.#options.kubeConfig)
        .watch(this.#options.path, query, onEvent, onDone)
        .then((controller) => {
          this.#request = controller;
          if (this.#stopped) controller.abort();
        })
        .catch(reject);
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function isGone(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: number };
  return e.statusCode === 410 || e.code === 410;
}

function isAbortOrTimeout(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return name === "AbortError" || name === "TimeoutError";
}
