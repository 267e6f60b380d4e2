/**
 * An image's pull progress from the pull engine's blob events: bytes in place of the total,
 * bytes fetched by this pull, and the average rate since it started. Pure: time is passed in.
 */
import type { PullEvent } from "../pull/index.ts";
import type { PullProgress } from "./types.ts";

interface BlobProgress {
  size: number;
  done: number;
  /** Held before this pull (exists, or the resumed part). */
  held: number;
}

export class PullProgressTracker {
  readonly #blobs = new Map<string, BlobProgress>();
  readonly #started: number;

  constructor(startedMs: number) {
    this.#started = startedMs;
  }

  /** Folds one event in; true when it changed the numbers. */
  update(event: PullEvent): boolean {
    if (event.type !== "blob") return false;
    const blob = this.#blobs.get(event.digest) ?? { size: event.size, done: 0, held: 0 };
    switch (event.status) {
      case "exists":
        blob.done = blob.held = event.size;
        break;
      case "waiting":
        break;
      case "downloading":
        if (event.resumedFrom !== undefined) blob.held = event.resumedFrom;
        blob.done = Math.min(event.size, event.current ?? blob.done);
        break;
      case "complete":
        blob.done = event.size;
        break;
    }
    this.#blobs.set(event.digest, blob);
    return true;
  }

  progress(nowMs: number): PullProgress {
    let done = 0;
    let total = 0;
    let downloaded = 0;
    for (const b of this.#blobs.values()) {
      done += b.done;
      total += b.size;
      downloaded += Math.max(0, b.done - b.held);
    }
    const seconds = (nowMs - this.#started) / 1000;
    return {
      done,
      total,
      downloaded,
      bytesPerSecond: seconds > 0 ? Math.round(downloaded / seconds) : 0,
    };
  }
}
