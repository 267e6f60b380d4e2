/**
 * What the status page lists as recent activity and charts as pull durations: the agent's
 * last pulls (pulled or failed), kept in a bounded ring. Pure bookkeeping, no I/O.
 */
import { RingBuffer } from "../web/index.ts";
import type { WarmResult } from "./types.ts";

export const ACTIVITY_CAPACITY = 200;

export interface ActivityEntry {
  readonly image: string;
  readonly target: string;
  readonly result: "pulled" | "failed";
  readonly at: string;
  readonly seconds?: number;
  readonly bytes?: number;
  /**
   * Where the bytes came from: `peers`, `peers + upstream HOST`, `upstream HOST` (the image's
   * registry), or `via mirror HOST` (a mirror the registry settings put in front of it answered).
   */
  readonly source: string;
  readonly error?: { readonly code: string; readonly message: string };
}

export class ActivityLog {
  readonly #ring: RingBuffer<ActivityEntry>;

  constructor(capacity = ACTIVITY_CAPACITY) {
    this.#ring = new RingBuffer(capacity);
  }

  /** Keeps pulls and failures; looks that found an image present are not activity. */
  record(result: WarmResult, at: Date = new Date()): void {
    if (result.state !== "pulled" && result.state !== "failed") return;
    this.#ring.push({
      image: result.image,
      target: result.target,
      result: result.state,
      at: at.toISOString(),
      ...(result.seconds === undefined ? {} : { seconds: result.seconds }),
      ...(result.bytes === undefined ? {} : { bytes: result.bytes }),
      source: sourceOf(result),
      ...(result.error === undefined ? {} : { error: result.error }),
    });
  }

  /** Oldest first. */
  entries(): ActivityEntry[] {
    return this.#ring.toArray();
  }
}

function sourceOf(result: WarmResult): string {
  const upstream =
    result.via === undefined
      ? `upstream ${registryOf(result.image)}`
      : `via mirror ${hostOf(result.via)}`;
  const peers = result.bytesFromPeers ?? 0;
  if (peers <= 0) return upstream;
  return peers >= (result.bytes ?? 0) ? "peers" : `peers + ${upstream}`;
}

/** The registry host of a normalized reference (`host[:port]/path[:tag|@digest]`). */
function registryOf(image: string): string {
  const slash = image.indexOf("/");
  return slash < 0 ? image : image.slice(0, slash);
}

/** `host:port` of a mirror's base URL (as the status page names registries). */
function hostOf(base: string): string {
  try {
    return new URL(base).host;
  } catch {
    return base;
  }
}
