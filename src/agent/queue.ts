/**
 * The agent's background pull queue. Every trigger (start, schedule, webhook, list change)
 * puts images here; the queue calls the WarmFunction for them a few at a time.
 *
 * De-duplication, as controller work queues do it: a request for an image already waiting
 * joins that wait (one pull); a request for an image being pulled right now marks it for one
 * more pass after the current one, because a push that arrives mid-pull may name a manifest
 * the running pull resolved too early to see. Any number of repeats cost at most that one
 * extra pass.
 */
import { FerryError } from "../observe/index.ts";
import { formatReference } from "../reference/index.ts";
import type { ImageEntry, WarmFunction, WarmResult } from "./types.ts";

export const DEFAULT_QUEUE_CONCURRENCY = 4;

export interface PullQueueOptions {
  readonly warm: WarmFunction;
  /** Images warmed at once (default 4). */
  readonly concurrency?: number;
  /** Every result the warm function reports, interim "pulling" ones included. */
  readonly onResult?: (result: WarmResult) => void;
  /** After each change of depth. */
  readonly onDepth?: (depth: number) => void;
  /** When a pull starts, with every trigger that asked for it. */
  readonly onStart?: (entry: ImageEntry, reasons: readonly string[]) => void;
  /** A WarmFunction reports failures as results; a throw is a bug there, reported here. */
  readonly onError?: (entry: ImageEntry, err: unknown) => void;
}

export type Enqueued = "queued" | "merged" | "again";

interface Job {
  readonly key: string;
  entry: ImageEntry;
  readonly reasons: Set<string>;
  readonly done: Promise<WarmResult[]>;
  resolve(results: WarmResult[]): void;
  /** The pass requested while this one runs. */
  again?: Job;
}

export interface QueueStats {
  readonly pending: number;
  readonly running: number;
  readonly completed: number;
  /** Requests that joined a waiting or follow-up pull instead of adding one. */
  readonly merged: number;
}

export class PullQueue {
  readonly #warm: WarmFunction;
  readonly #concurrency: number;
  readonly #onResult: ((r: WarmResult) => void) | undefined;
  readonly #onDepth: ((depth: number) => void) | undefined;
  readonly #onStart: PullQueueOptions["onStart"];
  readonly #onError: PullQueueOptions["onError"];
  readonly #waiting: Job[] = [];
  readonly #pending = new Map<string, Job>();
  readonly #running = new Map<string, Job>();
  readonly #abort = new AbortController();
  readonly #settled = new Set<Promise<void>>();
  #completed = 0;
  #merged = 0;
  #closed = false;

  constructor(options: PullQueueOptions) {
    this.#warm = options.warm;
    this.#concurrency = options.concurrency ?? DEFAULT_QUEUE_CONCURRENCY;
    this.#onResult = options.onResult;
    this.#onDepth = options.onDepth;
    this.#onStart = options.onStart;
    this.#onError = options.onError;
  }

  /** Pulls waiting, running, or asked for again while running. */
  get depth(): number {
    let again = 0;
    for (const job of this.#running.values()) if (job.again !== undefined) again++;
    return this.#pending.size + this.#running.size + again;
  }

  stats(): QueueStats {
    return {
      pending: this.#pending.size,
      running: this.#running.size,
      completed: this.#completed,
      merged: this.#merged,
    };
  }

  /** Queues one image; resolves with its results once the pull that covers this request ends. */
  add(entry: ImageEntry, reason: string): { outcome: Enqueued; done: Promise<WarmResult[]> } {
    if (this.#closed) throw closedError();
    const key = keyOf(entry);
    const waiting = this.#pending.get(key);
    if (waiting !== undefined) {
      this.#merged++;
      waiting.reasons.add(reason);
      waiting.entry = entry; // the newest settings win
      return { outcome: "merged", done: waiting.done };
    }
    const running = this.#running.get(key);
    if (running !== undefined) {
      if (running.again !== undefined) {
        this.#merged++;
        running.again.reasons.add(reason);
        running.again.entry = entry;
      } else {
        running.again = newJob(key, entry, reason);
        this.#depthChanged();
      }
      return { outcome: "again", done: running.again.done };
    }
    const job = newJob(key, entry, reason);
    this.#pending.set(key, job);
    this.#waiting.push(job);
    this.#depthChanged();
    this.#pump();
    return { outcome: "queued", done: job.done };
  }

  /** Queues every entry; resolves with all their results. */
  async run(entries: readonly ImageEntry[], reason: string): Promise<WarmResult[]> {
    const all = await Promise.all(entries.map((e) => this.add(e, reason).done));
    return all.flat();
  }

  /**
   * Stops taking work: waiting requests resolve with no results; pulls in flight get
   * `graceMs` to finish, then are cancelled (the pull engine leaves resumable partials,
   * never half-written blobs) and awaited.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    for (const job of this.#waiting.splice(0)) {
      this.#pending.delete(job.key);
      job.resolve([]);
    }
    for (const job of this.#running.values()) {
      job.again?.resolve([]);
      delete job.again;
    }
    this.#depthChanged();
    const all = Promise.all([...this.#settled]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), graceMs);
    });
    if ((await Promise.race([all, late])) === "late") this.#abort.abort();
    clearTimeout(timer);
    await all;
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#waiting.length > 0) {
      const job = this.#waiting.shift() as Job;
      this.#pending.delete(job.key);
      this.#running.set(job.key, job);
      const settled = this.#execute(job).finally(() => this.#settled.delete(settled));
      this.#settled.add(settled);
    }
  }

  async #execute(job: Job): Promise<void> {
    let results: WarmResult[] = [];
    this.#onStart?.(job.entry, [...job.reasons]);
    try {
      results = await this.#warm([job.entry], {
        signal: this.#abort.signal,
        onResult: (r) => this.#onResult?.(r),
      });
    } catch (err) {
      this.#onError?.(job.entry, err);
    }
    this.#running.delete(job.key);
    this.#completed++;
    job.resolve(results);
    const again = job.again;
    if (again !== undefined && !this.#closed) {
      this.#pending.set(again.key, again);
      this.#waiting.push(again);
    }
    this.#depthChanged();
    this.#pump();
  }

  #depthChanged(): void {
    this.#onDepth?.(this.depth);
  }
}

function keyOf(entry: ImageEntry): string {
  return `${formatReference(entry.ref)} ${entry.platform ?? ""}`;
}

function newJob(key: string, entry: ImageEntry, reason: string): Job {
  let resolve!: (results: WarmResult[]) => void;
  const done = new Promise<WarmResult[]>((r) => {
    resolve = r;
  });
  return { key, entry, reasons: new Set([reason]), done, resolve };
}

function closedError(): FerryError {
  return new FerryError("FERRY_INTERRUPTED", "the agent is shutting down", {
    hint: "the request was not queued; the next start warms every listed image",
  });
}
